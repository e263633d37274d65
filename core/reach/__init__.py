"""First-match reach: which packets each NAT rule really sees, as the kernel evaluates the rules.

`space` gives packets a finite shape (each dimension cut into the pieces the rules tell apart),
`matches` turns a rule's matches into a set of such packets, `firstmatch` runs the chains in
order and takes away what every earlier verdict took, and `describe` turns a set back into text
and JSON.
"""

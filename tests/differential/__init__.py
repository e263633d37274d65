"""Differential test of portscope's first-match reach against the kernel.

Random nat rulesets (`generate`) are loaded with iptables-nft, iptables-legacy or native nftables into a
host namespace (`topology`); probes from two clients and from the host itself (`probe`) show what the
kernel does; `portscope list --json` in that namespace says, through each binding's `reach`, what it
should do (`predict`); `run` compares them and `report` prints the differences. `simulate` evaluates the
abstract rules itself, to catch mistakes of the harness rather than of portscope.
"""

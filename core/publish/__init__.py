"""Publish and unpublish ports on running containers with portscope's own NAT and filter rules.

One job per module: `spec` and `validate` (pure parsing), `state` and `audit` (what is stored),
`backend` (which iptables flavour), `saved` (reading our part of `*-save`), `render` (rules from
state), `commit` (one restore batch per family, all-or-nothing), `targets`, `freeport` and
`conflicts` (checks before a change), `ops` and `maintain` (the commands), `watch` (Docker events).
Nothing here is imported by `portscope list`.
"""

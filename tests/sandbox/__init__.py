"""Sandboxes for tests: network namespaces and a real Docker engine inside one.

Nothing here touches the root network namespace's firewall.
"""

"""Firewall rule readers and parsers: iptables-save/-S text, nft text and nft JSON."""

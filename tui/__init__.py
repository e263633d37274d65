"""portscope's Textual app over core/. It never runs iptables or reads /proc itself."""

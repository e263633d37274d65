"""portscope core: reads NAT rules, sockets and containers, and joins them into bindings.

This package never imports Textual (checked by import-linter and a test).
"""

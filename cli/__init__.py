"""portscope's command line: `portscope list|capture|...`; `portscope` alone opens the TUI."""

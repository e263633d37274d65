"""`python -m cli` runs the portscope command line."""

from cli.launch import run

run()

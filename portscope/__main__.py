"""`python -m portscope` runs the portscope command line."""

from portscope.cli.launch import run

run()

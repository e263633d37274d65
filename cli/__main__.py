"""`python -m cli` runs the portscope command line."""

import sys

from cli.main import main

sys.exit(main())

"""`python -m gancls`: see gancls/cli.py."""

import sys

from .cli import main

sys.exit(main())

"""``python -m einsgrad``: the command line."""

import sys

from einsgrad.cli import main

sys.exit(main())

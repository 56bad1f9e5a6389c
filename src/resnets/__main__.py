"""``python -m resnets``: the command line (see :mod:`resnets.cli`)."""

import sys

from .cli import main

sys.exit(main())

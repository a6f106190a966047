"""``python -m pyfw``: see :mod:`pyfw.cli`."""

import sys

from .cli import main

sys.exit(main())

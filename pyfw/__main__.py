"""``python -m pyfw``: see :mod:`pyfw.cli`."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the CLI is still being imported
    print("pyfw: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main(prog="python -m pyfw"))

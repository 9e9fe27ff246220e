"""``python -m asyncpoll``: the ``asyncpoll`` command."""

import sys

from ._cli import main

sys.exit(main())

"""``python -m seqfunc`` is the ``seqfunc`` command."""

import sys

from seqfunc.cli import main

sys.exit(main())

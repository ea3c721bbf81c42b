"""``python -m seqfunc`` is the ``seqfunc`` command."""

import sys

try:
    from seqfunc.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command loads: nothing started, nothing to say
    sys.exit(130)

sys.exit(main())

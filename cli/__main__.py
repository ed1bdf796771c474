"""``python -m slicewise.cli``: the ``slicewise`` command."""

import sys

from .main import main

sys.exit(main())

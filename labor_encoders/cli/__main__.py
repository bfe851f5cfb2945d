"""``python -m labor_encoders.cli``: the same as the ``labor-encoders`` command."""

import sys

from . import main

sys.exit(main())

"""``python -m devtools`` = ``python -m devtools.stack``."""

import sys

from .stack import main

sys.exit(main())

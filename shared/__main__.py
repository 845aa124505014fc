"""``python -m shared``: the same CLI as the ``s3sentinel`` console script (shared/cli.py)."""
from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())

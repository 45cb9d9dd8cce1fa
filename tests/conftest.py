"""Shared test set-up.

The sample core bank is a standalone service in ``examples/banking``, not part of the
installed package: make ``import corebank`` work for tests that serve it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BANK_DIR = ROOT / "examples" / "banking"
if str(BANK_DIR) not in sys.path:
    sys.path.insert(0, str(BANK_DIR))

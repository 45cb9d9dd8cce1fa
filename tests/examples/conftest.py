"""The demo core bank is a standalone service, not part of the installed package: make
`import corebank` work for these tests."""

from __future__ import annotations

import sys
from pathlib import Path

BANK_DIR = Path(__file__).resolve().parents[2] / "examples" / "banking"
if str(BANK_DIR) not in sys.path:
    sys.path.insert(0, str(BANK_DIR))

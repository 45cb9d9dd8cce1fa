"""Run the demo core bank: `cd examples/banking && python -m corebank`.

Listens on 127.0.0.1:${BANK_PORT:-8001}; other settings come from BANK_* variables.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn

if __package__:
    from .app import app_from_env
else:
    # Run as a directory (`python examples/banking/corebank`): make the package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from corebank.app import app_from_env


def main() -> None:
    host = os.environ.get("BANK_HOST", "127.0.0.1")
    port = int(os.environ.get("BANK_PORT", "8001"))
    level = os.environ.get("BANK_LOG_LEVEL", "info")
    uvicorn.run(app_from_env(), host=host, port=port, log_level=level, ws="none")


if __name__ == "__main__":
    main()

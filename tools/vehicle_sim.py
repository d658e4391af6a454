#!/usr/bin/env python3
"""Run the vehicle simulator from a source checkout; the code is `firmware_bridge.simulator`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware_bridge.simulator import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

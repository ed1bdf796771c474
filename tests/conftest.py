"""Test-wide set-up: the shared helpers (tests/helpers) are importable by name."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "helpers"))

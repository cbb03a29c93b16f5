"""Fixtures shared by every test directory (this file also puts tests/ on sys.path, so tests
import ``golden_files``)."""

from __future__ import annotations

import pytest
from golden_files import Golden


@pytest.fixture
def golden() -> Golden:
    """Compare a rendering with its golden file (rewrite it with DRIFT_GOLDEN_UPDATE=1)."""
    return Golden()

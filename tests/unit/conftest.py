from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import DEMO


@pytest.fixture
def demo_path() -> Path:
    return DEMO

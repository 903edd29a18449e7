"""Shared test set-up: offline Hub settings and the real public data in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[variable] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("IMAGENET_REGT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public test data; CI requires it, elsewhere its absence skips the test."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared test data at {SHARED_DATA}")
        pytest.skip(f"real test data not found at {SHARED_DATA} (set IMAGENET_REGT_SHARED_DATA)")
    return SHARED_DATA

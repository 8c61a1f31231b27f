"""Session-wide fixtures: where the real spectra are, and artefact output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("ALVO_REAL_DATA", REPO.parent / "shared" / "data" / "real"))
ARTIFACTS = Path(os.environ.get("ALVO_TEST_ARTIFACTS", REPO / "test-artifacts"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real LAMOST/Ondrejov spectra of ../shared/data/real (never copied here)."""
    if not (REAL_DATA / "README.md").exists():
        pytest.skip(f"real spectra not found at {REAL_DATA} (set ALVO_REAL_DATA)")
    return REAL_DATA


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """A folder for screenshots and plots a person may want to look at after a run."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

"""Fixtures the browser tests of tests/peers/ share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.web_world import chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, one per test module (skips without it)."""
    with chromium() as browser:
        yield browser

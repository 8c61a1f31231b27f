"""axe-core, the accessibility checker, injected into pages driven by Playwright.

The npm package is installed once (``npm install --prefix``) into a per-version
cache folder; without npm, or offline with an empty cache, the tests that use
it skip and say why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

#: Pinned: a new axe-core release adds rules, which should be a deliberate change here.
AXE_VERSION = "4.14.1"
#: Impacts that fail a page; "moderate" and "minor" are reported, not failed.
BLOCKING = ("serious", "critical")


def axe_script() -> Path:
    """The path of ``axe.min.js``, installing the pinned package if needed (or skip)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "alvo"
    prefix = cache / f"axe-core-{AXE_VERSION}"
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    if script.is_file():
        return script
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm not installed (tests/peers/install-debian-deps.sh): no axe-core")
    prefix.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--prefix", str(prefix), f"axe-core@{AXE_VERSION}", "--no-audit",
         "--no-fund"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode or not script.is_file():
        pytest.skip(f"npm install axe-core@{AXE_VERSION} failed: {done.stderr[-300:]}")
    return script


def violations(page: Any, script: Path) -> list[dict[str, Any]]:
    """The serious and critical axe-core violations of the page as it is now (WCAG 2.1 AA)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(script))
    found = page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
              values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}}))
            .violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    return [v for v in found if v["impact"] in BLOCKING]

"""STILTS validators as functions that return their complaints.

``stilts votlint`` / ``datalinklint`` / ``taplint`` exit 0 even when they find
errors, so these helpers parse what they print and return the ERROR/WARNING
lines (or taplint's JSON totals); an empty list means clean.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

STILTS = shutil.which("stilts")


def require_stilts() -> str:
    if STILTS is None:
        pytest.skip("stilts not installed (Debian package 'stilts'; make test installs it as root)")
    return STILTS


def _problems(output: str) -> list[str]:
    """votlint prints ``ERROR (l.1, c.2): ...``; datalinklint/taplint print ``E-CODE-1 ...``."""
    return [
        line
        for line in output.splitlines()
        if "ERROR" in line or "WARNING" in line or line.startswith(("E-", "W-", "F-"))
    ]


def votlint(votable: str | Path | bytes, version: str = "1.4") -> list[str]:
    """Lint a VOTable (a path, URL or the document's bytes); return its complaints."""
    stilts = require_stilts()
    if isinstance(votable, bytes):
        with tempfile.NamedTemporaryFile(suffix=".vot", delete=False) as handle:
            handle.write(votable)
        target = handle.name
    else:
        target = str(votable)
    run = subprocess.run(
        [stilts, "votlint", f"votable={target}", f"version={version}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return _problems(run.stdout + run.stderr)


def datalinklint(url_or_path: str | Path) -> list[str]:
    stilts = require_stilts()
    run = subprocess.run(
        [stilts, "datalinklint", f"votable={url_or_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return _problems(run.stdout + run.stderr)


def taplint(tapurl: str, stages: str = "-EXA -OBS -LOC", extra: list[str] | None = None) -> dict:
    """Run taplint; return its JSON report (``report=EWF``).

    Callers assert on the error/warning lists it contains.
    """
    stilts = require_stilts()
    run = subprocess.run(
        [
            stilts,
            "taplint",
            f"tapurl={tapurl}",
            f"stages={stages}",
            "format=json",
            "report=EWF",
            *(extra or []),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads(run.stdout)

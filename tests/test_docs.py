"""The user docs name every job parameter the code parses and every result it writes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOBS = ["ingest", "train", "classify", "iterate"]


def _job_source(name: str) -> str:
    """A job type's source: its module, or every module of its package (ingest's doors)."""
    module = ROOT / "service" / "jobs" / f"{name}.py"
    if module.is_file():
        return module.read_text()
    return "\n".join(p.read_text() for p in sorted((ROOT / "service" / "jobs" / name).glob("*.py")))


def test_every_job_parameter_is_documented() -> None:
    page = (ROOT / "docs" / "jobs.md").read_text()
    parsed = set()
    for source in [*map(_job_source, JOBS), _job_source("learning")]:
        parsed |= set(re.findall(r"params\.\w+\(\s*\"([A-Z_]+)\"", source))
    assert {"DATASET", "NOISE_AUGMENT", "MODEL_ID", "STRATEGY", "SSA"} <= parsed  # the scan works
    missing = sorted(p for p in parsed if f"`{p}`" not in page)
    assert not missing, f"docs/jobs.md does not describe {missing}"


def test_every_job_result_is_documented() -> None:
    page = (ROOT / "docs" / "jobs.md").read_text()
    written = set()
    for name in JOBS:
        written |= set(re.findall(r"[\"']([a-z-]+)[\"']: \(", _job_source(name)))
        written |= set(re.findall(r"outputs\[\"([a-z-]+)\"\]", _job_source(name)))
    assert {"failures", "training-curve", "learning-curve", "candidates", "page"} <= written
    missing = sorted(r for r in written if f"`{r}`" not in page)
    assert not missing, f"docs/jobs.md does not describe the results {missing}"


def test_the_labelling_conventions_are_the_pages_word_for_word() -> None:
    """One source for the hard cases (issue 23): the guide on the page loads
    static/conventions.json; docs/labelling.md must say exactly the same."""
    import json

    page = (ROOT / "docs" / "labelling.md").read_text()
    data = json.loads((ROOT / "service" / "web" / "static" / "conventions.json").read_text())
    assert len(data["conventions"]) >= 4 and data["about"] in page
    for convention in data["conventions"]:
        assert f"### {convention['case']} → `{convention['label']}`" in page
        assert convention["rule"] in page, convention["id"]

"""TOPCAT under Xvfb and the JSAMP snooper receive what alvo sends over SAMP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io.votable import parse_single_table
from astropy.table import Table

from service.jobs.results import rows_votable
from tests.peers.stilts import votlint

SCENARIO = Path(__file__).with_name("samp_desktop_scenario.py")
TOOLS = ("Xvfb", "jsamp", "topcat", "aladin", "unshare", "ip")


def _private_network_available() -> bool:
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def desktop_run(tmp_path_factory, artifacts):
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"SAMP desktop peers not installed: {', '.join(missing)}")
    if not _private_network_available():
        pytest.skip("cannot create a private network namespace (unshare -n needs root)")
    work = tmp_path_factory.mktemp("samp")
    # a real alvo candidate table: template metadata + DataLink service descriptor
    rows = [
        {
            "pubdid": f"ivo://alvo.demo/lamost?{i}",
            "ra": 10.0 + i,
            "dec": 41.0 + i,
            "predicted_class": "single-peak",
            "p_single_peak": 0.9,
            "p_double_peak": 0.05,
            "p_absorption": 0.05,
            "entropy": 0.5 - 0.1 * i,
            "hou_verdict": "emission",
            "role": "query",
            "iteration": 0,
            "datalink_url": f"http://127.0.0.1:8000/datalink/lamost?ID=ivo://alvo.demo/lamost?{i}",
        }
        for i in range(5)
    ]
    votable = work / "candidates.vot"
    votable.write_bytes(rows_votable(rows, {"campaign": "demo", "iteration": "0", "kind": "query"}))
    assert votlint(votable) == []
    table = Table({"pubdid": [row["pubdid"] for row in rows]})
    home = work / "home"
    home.mkdir()
    out = artifacts / "samp-desktop"
    command = f"ip link set lo up && exec {sys.executable} {SCENARIO} {votable} {out}"
    env = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
        "PYTHONPATH": str(Path.cwd()),
    }
    run = subprocess.run(
        ["unshare", "-n", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads((out / "report.json").read_text()), table


def test_topcat_loads_the_candidate_table(desktop_run):
    report, sent = desktop_run
    assert report["table_load"]["topcat"]["samp.status"] == "samp.ok"
    received = parse_single_table(report["table_get"]).to_table()
    assert len(received) == len(sent)
    assert list(received["pubdid"]) == list(sent["pubdid"])


def test_topcat_accepts_row_highlight_and_selection(desktop_run):
    report, _ = desktop_run
    for message in ("highlight", "select"):
        assert report[message]["topcat"]["samp.status"] == "samp.ok", message


def test_aladin_points_at_position_and_loads_table(desktop_run):
    report, _ = desktop_run
    assert report["point_at"]["aladin"]["samp.status"] == "samp.ok"
    assert report["aladin_table_load"]["aladin"]["samp.status"] == "samp.ok"


def test_snooper_sees_spectrum_with_ssa_metadata(desktop_run):
    report, _ = desktop_run
    log = report["snooper_log"]
    assert "spectrum.load.ssa-generic" in log
    assert "ssa:Access.Format" in log and "application/fits" in log

"""The TAP service against real clients: STILTS taplint and pyvo, on SQLite and PostgreSQL.

Each database gets a real uvicorn with generated result rows: on SQLite the
whole service (``service.app:create_app``, TAP async beside the other UWS job
lists, as users run it), on PostgreSQL TAP alone (``service.vo.tap.routes:standalone_app``).
taplint runs every stage that applies (all but OBS and LOC: no ObsCore table, no ObsLocTAP
ivoa.obsplan table); it exits 0 even on errors, so its JSON report
is parsed and the error list must be empty.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import pyvo
from astropy.table import Table

from tests.peers.postgres import postgres  # noqa: F401  (the session fixture)
from tests.peers.stilts import taplint, votlint
from tests.tap_support import postgres_demo, sqlite_demo, tap_server

pytestmark = pytest.mark.peers
STAGES = "-OBS -LOC"


@pytest.fixture(scope="module")
def sqlite_tap(tmp_path_factory):
    home = tmp_path_factory.mktemp("taplint-sqlite")
    sqlite_demo(home, 800)
    with tap_server(home, factory="service.app:create_app") as url:
        yield url


@pytest.fixture(scope="module")
def postgres_tap(postgres, tmp_path_factory):  # noqa: F811
    home = tmp_path_factory.mktemp("taplint-pg")
    with tap_server(home, postgres_demo(postgres, "taplint", 800)) as url:
        yield url


def _errors(report: dict) -> list[str]:
    """ERROR and FAILURE reports of taplint's JSON (``sections[].reports[].level``)."""
    found = [
        f"{section.get('code')}-{item.get('code')}: {item.get('text')}"
        for section in report.get("sections", [])
        for item in section.get("reports", [])
        if item.get("level") in ("ERROR", "FAILURE")
    ]
    totals = report.get("totals", {})
    if (totals.get("ERROR", 0) or totals.get("FAILURE", 0)) and not found:
        found.append(f"totals: {totals}")
    return found


@pytest.mark.parametrize("service", ["sqlite_tap", "postgres_tap"])
def test_taplint_reports_no_errors(service, request):
    url = request.getfixturevalue(service)
    report = taplint(url, stages=STAGES)
    assert report, "taplint produced no report"
    ran = {section["code"] for section in report.get("sections", [])}
    assert {"TMV", "TMS", "CAP", "QGE", "QPO", "QAS", "UWS", "MDQ", "UPL", "EXA"} <= ran
    assert _errors(report) == []


@pytest.mark.parametrize("service", ["sqlite_tap", "postgres_tap"])
def test_pyvo_sync_async_and_upload(service, request):
    url = request.getfixturevalue(service)
    tap = pyvo.dal.TAPService(url)
    text = "SELECT TOP 10 prediction_id, entropy FROM alvo.prediction ORDER BY entropy DESC"
    sync = tap.run_sync(text).to_table()
    assert len(sync) == 10 and np.all(np.diff(sync["entropy"]) <= 0)
    job = tap.submit_job(text)
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=120)
    job.raise_if_error()
    assert list(job.fetch_result().to_table()["prediction_id"]) == list(sync["prediction_id"])
    job.delete()
    targets = Table({"ra": [83.8, 200.0], "dec": [-5.4, 30.0], "tag": ["orion", "north"]})
    joined = tap.run_sync(
        "SELECT u.tag, s.spectrum_id FROM TAP_UPLOAD.targets AS u JOIN alvo.spectrum AS s "
        "ON 1 = CONTAINS(POINT(s.ra, s.dec), CIRCLE(POINT(u.ra, u.dec), 15))",
        uploads={"targets": targets},
    ).to_table()
    assert len(joined) > 0 and set(joined["tag"]) <= {"orion", "north"}
    assert [t.name for t in tap.tables if t.name.startswith("alvo.")]


def test_results_pass_votlint(sqlite_tap):
    for fmt in ("votable", "application/x-votable+xml;serialization=BINARY2", "votable/b2"):
        params = {"LANG": "ADQL", "QUERY": "SELECT TOP 5 * FROM alvo.spectrum", "MAXREC": "3",
                  "RESPONSEFORMAT": fmt}  # fmt: skip
        raw = httpx.get(f"{sqlite_tap}/sync", params=params).content
        assert b"OVERFLOW" in raw
        assert votlint(raw) == []
    error = httpx.get(f"{sqlite_tap}/sync", params={"LANG": "ADQL", "QUERY": "SELECT"}).content
    assert votlint(error) == []


def test_errors_are_found_in_a_report():
    """The report parser must see errors where taplint reports them (else the test is blind)."""
    report = {"sections": [{"code": "PRE", "reports": [
        {"level": "WARNING", "code": "W1", "text": "fine"},
        {"level": "ERROR", "code": "TAP0", "text": "TAP service not present"}]}],
        "totals": {"ERROR": 1, "FAILURE": 0, "WARNING": 1}}  # fmt: skip
    assert _errors(report) == ["PRE-TAP0: TAP service not present"]
    assert _errors({"sections": [], "totals": {"ERROR": 2}}) == ["totals: {'ERROR': 2}"]

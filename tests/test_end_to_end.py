"""alvo end to end on real spectra, through the VO interfaces only.

A live service publishes the real Ondrejov and LAMOST spectra of
../shared/data/real over its SSA/DataLink; a client ingests both collections
over SSA (the Ondrejov set labelled by the real Ondrejov label file), runs two
``iterate`` jobs with the oracle's labels in between, fetches the candidates
with pyvo, lints them with STILTS, and finds the predictions over TAP.
"""

from __future__ import annotations

import httpx
import pytest
from pyvo.dal import DALResults, TAPService

from service.net.uws_client import follow, submit
from service.settings import Settings
from tests.security.hostile_servers import FixedAnswer, running
from tests.vo_fixture import catalogue_real_files, free_port, live_server
from tests.votable_check import votable_problems


@pytest.fixture(scope="module")
def service(real_data, tmp_path_factory):
    from service.app import create_app

    home = tmp_path_factory.mktemp("e2e-home")
    lamost = sorted((real_data / "lamost-dr2").glob("*.fits"))
    lamost += sorted((real_data / "lamost-dr1").glob("*.fits"))
    catalogue_real_files(
        home, {"ondrejov": sorted((real_data / "ondrejov").glob("*.fits")), "lamost": lamost}
    )
    port = free_port()
    settings = Settings(home=home, port=port, demo_archive_size=0, simbad="off")
    with live_server(create_app(settings), port, lifespan="on") as url:
        yield url, real_data


def job(base: str, job_list: str, **parameters: str):
    status = follow(submit(f"{base}/{job_list}", list(parameters.items())), lambda s: None)
    assert status.phase == "COMPLETED", status.error
    return status


def test_ingest_iterate_label_iterate_and_query(service):
    base, real_data = service
    labels = FixedAnswer((real_data / "ondrejov-labels.csv").read_bytes())  # labels at a URL
    with running(labels):
        source = job(
            base, "ingest", DATASET="ondrejov", SSA=f"{base}/ssa/ondrejov", LABELS=labels.url()
        )
    assert httpx.get(source.results["summary"][0]).json()["domain"] == "source"
    pool = job(base, "ingest", DATASET="lamost", SSA=f"{base}/ssa/lamost")
    pool_summary = httpx.get(pool.results["summary"][0]).json()
    assert pool_summary["domain"] == "target" and pool_summary["added"] >= 20

    # PADDING: fill the batch with predicted absorption when few candidates are left (the
    # service pads only when asked since issue 23)
    settings = {
        "MODEL": "small",
        "EPOCHS": "5",
        "BATCH": "5",
        "PRECISION_SAMPLE": "3",
        "PADDING": "5",
    }
    first = job(base, "iterate", CAMPAIGN="e2e", SOURCE="ondrejov", TARGET="lamost", **settings)
    query_url = first.results["query"][0]
    batch = DALResults.from_result_url(query_url)  # pyvo reads the job's VOTable result
    assert len(batch) >= 5
    assert votable_problems(httpx.get(query_url).content) == []

    # the oracle: BT CMi is a known emission-line star, the other LAMOST stars are not
    verdicts = [
        {
            "pubdid": str(row["pubdid"]),
            "label": "single-peak" if "bt-cmi" in str(row["pubdid"]) else "absorption",
        }
        for row in batch
    ]
    stored = httpx.post(f"{base}/campaigns/e2e/labels", json={"labels": verdicts}).json()
    assert stored["stored"] == len(verdicts) and stored["conflicts"] == []

    second = job(base, "iterate", CAMPAIGN="e2e", **settings)
    candidates_url = f"{base}/campaigns/e2e/candidates"
    candidates = DALResults.from_result_url(candidates_url)
    assert votable_problems(httpx.get(candidates_url).content) == []
    assert {"pubdid", "entropy", "hou_verdict", "datalink"} <= set(candidates.fieldnames)
    assert httpx.get(second.results["summary"][0]).json()["iteration"] == 1

    tap = TAPService(f"{base}/tap")
    counts = tap.search(
        "SELECT iteration, COUNT(*) AS n FROM alvo.prediction GROUP BY iteration ORDER BY iteration"
    ).to_table()
    assert list(counts["iteration"]) == [0, 1]
    # the latest iteration has a row per pool spectrum; the one before keeps only the
    # spectra it selected or had labelled (every row is in its Parquet prediction file)
    assert int(counts["n"][1]) == pool_summary["added"] >= int(counts["n"][0]) >= len(batch)
    files = tap.search("SELECT iteration, n_rows FROM alvo.prediction_file").to_table()
    assert sorted(files["iteration"]) == [0, 1]
    assert list(files["n_rows"]) == [pool_summary["added"]] * 2
    # the same question as an async TAP job on the service's own UWS system
    async_counts = tap.run_async(
        "SELECT COUNT(*) AS n FROM alvo.prediction WHERE iteration = 1"
    ).to_table()
    assert int(async_counts["n"][0]) == pool_summary["added"]

"""The ingest job end to end: a live service ingests real spectra from its own SSA.

The archive holds the real LAMOST DR2 and Ondrejov files of ../shared/data/real
(copied into a temporary home, never into the repository) plus one corrupt
file, so the job must add the good spectra and name the bad one's reason.
"""

from __future__ import annotations

import io
import shutil

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from astropy.io.votable import parse_single_table

from service.net.uws_client import follow, submit
from service.settings import Settings
from service.store import schema
from service.store.datasets import Datasets
from service.store.engine import engine_for
from tests.security.hostile_servers import FixedAnswer, running
from tests.vo_fixture import catalogue_real_files, free_port, live_server
from tests.votable_check import votable_problems


@pytest.fixture(scope="module")
def service(real_data, tmp_path_factory):
    home = tmp_path_factory.mktemp("ingest-home")
    lamost = sorted((real_data / "lamost-dr2").glob("*.fits"))[:6]
    ondrejov = sorted((real_data / "ondrejov").glob("*.fits"))
    catalogue_real_files(home, {"lamost": lamost, "ondrejov": ondrejov})
    # one spectrum in the catalogue is a truncated file: it must fail, the rest go on
    broken = home / "archive" / "lamost" / "spectra" / lamost[0].name
    broken.write_bytes(broken.read_bytes()[:5000])
    port = free_port()
    settings = Settings(home=home, port=port, demo_archive_size=0)
    from service.app import create_app

    with live_server(create_app(settings), port, lifespan="on") as url:
        yield url, settings


def run_job(base: str, parameters: list[tuple[str, str]]):
    return follow(submit(f"{base}/ingest", parameters), lambda status: None)


def test_ssa_ingest_adds_good_spectra_and_names_the_bad_one(service):
    base, settings = service
    status = run_job(base, [("DATASET", "pool"), ("SSA", f"{base}/ssa/lamost"), ("MAXREC", "100")])
    assert status.phase == "COMPLETED", status.error
    summary = httpx.get(status.results["summary"][0]).json()
    assert summary == {
        "dataset": "pool",
        "domain": "target",
        "added": 5,
        "already_present": 0,
        "failed": 1,
        "reasons": {"CORRUPT_FITS": 1},
        "chunks": 1,
        "chunks_ran_on": "job process",
        "ssa": {  # one answer, no OVERFLOW: no tiles
            "listed": 6,
            "queries": 1,
            "tiles": 0,
            "too_dense_tiles": 0,
            "capped_at_maxrec": False,
        },
    }
    failures = httpx.get(status.results["failures"][0]).content
    assert votable_problems(failures) == []
    table = parse_single_table(io.BytesIO(failures)).to_table()
    assert list(table["reason"]) == ["CORRUPT_FITS"]
    datasets = Datasets(settings)
    dataset = datasets.require("pool")
    features = dataset.features.array()
    assert features.shape == (5, 140) and np.isfinite(features).all()
    rows = datasets.spectra(dataset, ["pubdid", "designation", "ra", "access_url", "datalink_url"])
    assert all(str(p).startswith("ivo://") for p in rows["pubdid"])
    assert all(d for d in rows["designation"])  # LAMOST DESIG read from the files
    assert all(str(u).startswith(f"{base}/") for u in rows["access_url"])
    assert all(str(u).startswith(f"{base}/datalink/lamost?ID=") for u in rows["datalink_url"])


def test_ondrejov_with_labels_is_a_labelled_source_set(service, tmp_path):
    base, settings = service
    labels = FixedAnswer(  # the labels at a URL: the service reads no local file for a job
        b"pubdid,label\nivo://alvo.demo/ondrejov?gamma-cas-emission,0\n"
        b"ivo://alvo.demo/ondrejov?alpha-lyr-absorption,1\n"
    )
    with running(labels):
        status = run_job(
            base,
            [("DATASET", "source"), ("SSA", f"{base}/ssa/ondrejov"), ("LABELS", labels.url())],
        )
    assert status.phase == "COMPLETED", status.error
    summary = httpx.get(status.results["summary"][0]).json()
    assert summary["domain"] == "source"  # R = 13000: detected as the labelled instrument
    datasets = Datasets(settings)
    dataset = datasets.require("source")
    labelled = datasets.source_labels(dataset)
    pubdids = datasets.spectra(dataset, ["pubdid"])["pubdid"]
    assert {pubdids[row]: verdict for row, verdict in labelled.items()} == {
        "ivo://alvo.demo/ondrejov?gamma-cas-emission": "single-peak",
        "ivo://alvo.demo/ondrejov?alpha-lyr-absorption": "absorption",
    }
    # Issue 15: labels.csv labels were stored with source 'votable'; collection was empty
    engine = engine_for(settings.sqlalchemy_url)
    with engine.connect() as conn:
        sources = set(conn.scalars(sa.select(schema.label.c.source)))
        collection = conn.scalar(
            sa.select(schema.dataset.c.collection).where(schema.dataset.c.name == "source")
        )
    assert sources == {"ingest"} and collection == "ondrejov"


def test_unreachable_url_is_a_named_failure(service):
    base, _ = service
    port = free_port()  # nothing listens there
    status = run_job(base, [("DATASET", "urls"), ("URL", f"http://127.0.0.1:{port}/nothing.fits")])
    assert status.phase == "COMPLETED", status.error
    assert httpx.get(status.results["summary"][0]).json()["reasons"] == {"HTTP_ERROR": 1}


def test_bad_parameters_are_refused_when_the_job_is_created(service):
    base, _ = service
    response = httpx.post(f"{base}/ingest", data={"DATASET": "x"})
    assert response.status_code == 400 and "say where the spectra are" in response.text
    response = httpx.post(f"{base}/ingest", data={"DATASET": "../etc", "URL": "http://x/"})
    assert response.status_code == 400
    response = httpx.post(f"{base}/ingest", data={"DATASET": "x", "ID": "ivo://a?1"})
    assert response.status_code == 400 and "DATALINK" in response.text


def test_uploaded_table_of_datalink_ids_is_resolved(service):
    """An uploaded VOTable (as TOPCAT would send) of publisher DIDs, resolved via DataLink."""
    from astropy.table import Table

    base, settings = service
    pubdids = [
        "ivo://alvo.demo/ondrejov?gamma-cas-emission",
        "ivo://alvo.demo/ondrejov?no-such-spectrum",
    ]
    table = Table({"pubdid": pubdids, "label": ["single-peak", "absorption"]})
    body = io.BytesIO()
    table.write(body, format="votable")
    response = httpx.post(
        f"{base}/ingest",
        data={
            "DATASET": "uploaded",
            "DATALINK": f"{base}/datalink/ondrejov",
            "UPLOAD": "refs,param:refs",
            "PHASE": "RUN",
        },
        files={"refs": ("refs.vot", body.getvalue(), "application/x-votable+xml")},
    )
    assert response.status_code == 303, response.text
    status = follow(str(httpx.URL(f"{base}/ingest").join(response.headers["location"])), print)
    assert status.phase == "COMPLETED", status.error
    summary = httpx.get(status.results["summary"][0]).json()
    assert summary["added"] == 1 and summary["failed"] == 1
    datasets = Datasets(settings)
    dataset = datasets.require("uploaded")
    assert list(datasets.source_labels(dataset).values()) == ["single-peak"]


def test_an_ssa_query_that_finds_nothing_is_a_clear_error(service):
    base, _ = service
    status = run_job(
        base,
        [("DATASET", "none"), ("SSA", f"{base}/ssa/lamost"), ("POS", "0,-89"), ("SIZE", "0.01")],
    )
    assert status.phase == "ERROR"
    assert "the SSA query named no spectra" in status.error and "widen POS/SIZE" in status.error


def test_both_doors_write_the_same_rows_for_the_same_files(service, tmp_path):
    """``alvo ingest tree`` (the window reader, on local files) and an ``ingest`` job (the
    full reader, on the same files fetched by URL) hand the same chunk type to the same
    writer: the same ``spectrum`` rows but for the access URL, the same features to
    float32 precision, the same failure and the same dataset columns."""
    from service.jobs.ingest.chunk import ROW_COLUMNS
    from service.jobs.ingest.tree import ingest_tree
    from service.vo.ssa import data_url

    base, settings = service
    served = settings.home / "archive" / "lamost" / "spectra"
    names = sorted(path.name for path in served.glob("*.fits"))
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in names:  # the same bytes, the truncated file among them
        shutil.copyfile(served / name, tree / name)
    summary = ingest_tree(settings, tree, "by-tree", workers=1)
    urls = [("URL", data_url(base, "lamost", f"spectra/{name}")) for name in names]
    status = run_job(base, [("DATASET", "by-url"), *urls])
    assert status.phase == "COMPLETED", status.error
    assert summary["added"] == httpx.get(status.results["summary"][0]).json()["added"] == 5
    assert summary["failed"] == {"CORRUPT_FITS": 1}

    datasets = Datasets(settings)
    columns = [name for name in ROW_COLUMNS if name != "access_url"] + ["learning_domain"]
    rows, features, described = {}, {}, {}
    for name in ("by-tree", "by-url"):
        dataset = datasets.require(name)
        spectra = datasets.spectra(dataset, [*columns, "row_index"])
        order = np.argsort(spectra["pubdid"])
        rows[name] = [{c: spectra[c][i] for c in columns} for i in order]
        features[name] = dataset.features.array()[spectra["row_index"][order].astype(int)]
        found = datasets.get(name)
        described[name] = (found.domain, found.collection) if found else None
    assert rows["by-tree"] == rows["by-url"]
    assert all(row["pubdid"].startswith("ivo://") for row in rows["by-tree"])
    np.testing.assert_allclose(features["by-tree"], features["by-url"], rtol=1e-6, atol=1e-6)
    assert described["by-tree"] == described["by-url"] == ("target", "lamost")

"""A tree-ingested archive, seen by the service: its root is trusted, nothing else is.

``alvo ingest tree ROOT`` registers ROOT; the labelling page then plots the files in
place, and clients get them over HTTP at ``/archive/{root_id}/...`` instead of a
``file://`` URL of the server's disk. A path that leaves the root (``..``, a link
pointing out, an absolute path) is refused, and a ``file://`` URL a *user* gives is
still never read, even one inside the root.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from astropy.io import fits
from astropy.io.votable import parse, parse_single_table
from starlette.testclient import TestClient

from service.app import create_app
from service.jobs.ingest.tree import file_url
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.store import archive_roots
from service.store.campaigns import Campaigns
from service.store.datasets import Datasets
from tests.votable_check import votable_problems
from tests.web_world import add_source_set, record_iteration

N_FILES = 24


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """(settings, root, root id, relative paths ingested), a campaign ``tree`` over them."""
    from service.archive.generate import generate_archive
    from service.jobs.ingest.tree import ingest_tree
    from service.spectra.files import archive_files

    folder = tmp_path_factory.mktemp("roots")
    generate_archive(folder / "make", "lamost", N_FILES, seed=5)
    root = folder / "make" / "archive" / "lamost"
    (root / "catalogue.fits").unlink()
    settings = Settings(home=folder / "home", port=8123, demo_archive_size=0)
    summary = ingest_tree(settings, root, "pool", workers=1)
    assert summary["added"] == N_FILES
    # after the ingest: a secret spectrum beside the root, and ways to reach it from inside
    files = list(archive_files(root))
    shutil.copy(root / files[0], folder / "secret.fits")
    (root / "0000" / "escape.fits").symlink_to(folder / "secret.fits")
    (root / "0000" / "notes.txt").write_text("not a spectrum")
    datasets = Datasets(settings)
    add_source_set(datasets, np.random.default_rng(1), 60)
    campaigns = Campaigns(settings)
    campaign = campaigns.create("tree", "src", "pool", 10, "a tree-ingested pool")
    pool = datasets.require("pool")
    ids = campaigns.spectrum_ids(pool).tolist()
    p = np.tile([0.5, 0.3, 0.2], (len(ids), 1))
    roles = np.array(["query"] * len(ids), dtype=object)
    record_iteration(campaigns, campaign, ids, p, roles, np.array(["none"] * len(ids)))
    return settings, root, summary["root_id"], files


@pytest.fixture
def client(tree):
    with TestClient(create_app(tree[0])) as test_client:
        yield test_client


def local(settings: Settings, url: str) -> str:
    """The path of a URL the service handed out, to ask the test client for it."""
    assert url.startswith(settings.public_url + "/archive/"), url
    return url.removeprefix(settings.public_url)


def test_ingest_registers_its_root(tree):
    settings, root, rid, _ = tree
    assert archive_roots.load(settings).by_id == {rid: root.resolve()}


def test_served_file_has_the_bytes_of_the_file(client, tree):
    _, root, rid, files = tree
    response = client.get(f"/archive/{rid}/{files[3]}")
    assert response.status_code == 200
    assert response.content == (root / files[3]).read_bytes()
    assert response.headers["content-type"] == "application/fits"


@pytest.mark.parametrize(
    "path",
    [
        "%2e%2e/%2e%2e/%2e%2e/secret.fits",  # '..' (quoted: clients would drop it)
        "0000/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.fits",
        "0000/escape.fits",  # a link inside the root that points out of it
        "/etc/passwd",  # absolute
        "0000/notes.txt",  # inside, but not a spectrum file
    ],
)
def test_paths_out_of_the_root_are_refused(client, tree, path):
    _, root, rid, _ = tree
    response = client.get(f"/archive/{rid}/{path}")
    assert response.status_code == 404, response.text
    assert "OUTSIDE_ARCHIVE_ROOT" in response.text
    assert (root.parents[2] / "secret.fits").read_bytes() not in response.content


def test_unknown_root_and_missing_file_are_404(client, tree):
    _, _, rid, _ = tree
    assert "OUTSIDE_ARCHIVE_ROOT" in client.get("/archive/000000000000/0000/x.fits").text
    missing = client.get(f"/archive/{rid}/0000/no-such.fits")
    assert missing.status_code == 404 and "UNKNOWN_FILE" in missing.text


def test_oracle_page_plots_tree_spectra_and_links_to_the_served_files(client, tree):
    settings, root, _, files = tree
    rows = client.get("/campaigns/tree/batch").json()["rows"]
    assert len(rows) == N_FILES
    assert all("flux" in row["spectrum"] and "flux" in row["overview"] for row in rows), [
        row["spectrum"] for row in rows if "flux" not in row["spectrum"]
    ]
    served = {client.get(local(settings, row["access_url"])).content for row in rows}
    assert served == {(root / f).read_bytes() for f in files}


def test_candidate_votable_hands_out_served_urls(client, tree):
    settings = tree[0]
    response = client.get("/campaigns/tree/candidates", params={"ROLE": "query"})
    assert response.status_code == 200, response.text
    assert votable_problems(response.content) == []
    document = parse(io.BytesIO(response.content))
    table = document.get_first_table().array
    urls = [str(u) for u in table["access_url"]]
    assert len(urls) == N_FILES and not any(u.startswith("file:") for u in urls)
    assert client.get(local(settings, urls[0])).status_code == 200
    # the DataLink service descriptor TOPCAT activates: this service's, for every row
    service = {p.ID: p.value for r in document.resources for p in r.params}
    links = [str(u) for u in table["datalink"]]
    assert all(u.startswith(f"{service['dl_accessURL']}?ID=") for u in links)
    assert client.get(local(settings, links[0])).status_code == 200


def test_tap_hands_out_served_urls_not_the_servers_paths(client, tree):
    """TAP reads the stored ``file://`` URLs; TOPCAT gets the URLs the service serves."""
    settings = tree[0]
    query = "SELECT access_url, pubdid FROM alvo.spectrum WHERE access_url LIKE 'file:%'"
    response = client.post("/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL",
                                              "QUERY": query})  # fmt: skip
    assert response.status_code == 200, response.text
    assert votable_problems(response.content) == []
    urls = [str(u) for u in parse_single_table(io.BytesIO(response.content)).array["access_url"]]
    assert len(urls) == N_FILES and not any(u.startswith("file:") for u in urls)
    served = client.get(local(settings, urls[0]))
    assert served.status_code == 200 and served.content[:6] == b"SIMPLE"


def pubdid_of(settings: Settings, relative: str, root: Path) -> str:
    from service.store import schema

    url = file_url(str(root.resolve()), relative)
    with Datasets(settings).engine.connect() as conn:
        query = sa.select(schema.spectrum.c.pubdid).where(schema.spectrum.c.access_url == url)
        return str(conn.scalar(query))


def test_datalink_of_a_tree_spectrum_gives_this_preview_and_proc(client, tree):
    settings, root, rid, files = tree
    pubdid = pubdid_of(settings, files[2], root)
    response = client.get(f"/archive/{rid}/datalink", params={"ID": [pubdid, "ivo://x?none"]})
    assert response.status_code == 200 and votable_problems(response.content) == []
    table = parse_single_table(io.BytesIO(response.content)).to_table(use_names_over_ids=True)
    assert list(table["semantics"]) == ["#this", "#preview", "#proc", "#this"]
    this, preview = table[0], table[1]
    assert this["content_length"] == (root / files[2]).stat().st_size
    assert client.get(local(settings, this["access_url"])).content == (root / files[2]).read_bytes()
    png = client.get(local(settings, preview["access_url"]))
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert str(table[3]["error_message"]).startswith("NotFoundFault")
    cutout = client.get(f"/archive/{rid}/proc", params={"ID": pubdid, "BAND": "6.5e-7 6.6e-7"})
    assert cutout.status_code == 200 and cutout.headers["content-type"] == "application/fits"
    with fits.open(io.BytesIO(cutout.content)) as hdus:
        spectral = hdus["SPECTRUM"].data["spectral"]
        assert hdus["SPECTRUM"].header["DS_IDPUB"] == pubdid
    assert 6500 <= spectral.min() < spectral.max() <= 6600


def test_datalink_of_an_unknown_root_or_id_is_refused(client, tree):
    _, _, rid, _ = tree
    unknown_root = client.get("/archive/000000000000/datalink", params={"ID": "x"})
    assert unknown_root.status_code == 404 and "OUTSIDE_ARCHIVE_ROOT" in unknown_root.text
    missing = client.get(f"/archive/{rid}/proc", params={"ID": "ivo://x?none"})
    assert missing.status_code == 404 and missing.text.startswith("NotFoundError")


def test_a_link_out_of_the_root_is_not_read_for_the_page(tree):
    """A spectrum whose ``file://`` URL leads out of its root gets a named error, not a plot."""
    settings, root, _, _ = tree
    roots = archive_roots.load(settings)
    with pytest.raises(AlvoError) as refused:
        roots.local_file(file_url(str(root), "0000/escape.fits"))
    assert refused.value.reason is Reason.OUTSIDE_ARCHIVE_ROOT
    from service.web.oracle import spectrum_views_of

    urls = [file_url(str(root), "0000/escape.fits"), "file:///etc/passwd"]
    views = spectrum_views_of(settings, roots, urls)
    assert [v["error"].split(":")[0] for v in views.native] == ["OUTSIDE_ARCHIVE_ROOT"] * 2


def test_user_given_file_urls_stay_refused_even_inside_a_root(tree):
    """The ingest job's path (URL parameters, uploaded tables, SSA answers all end here)
    never reads a local file, registered root or not."""
    from service.jobs.ingest.served import fetch_chunk
    from service.spectra.access import SpectrumReference

    settings, root, _, files = tree
    urls = [file_url(str(root), files[0]), "file:///etc/passwd", f"file://{os.devnull}"]
    cache = Path(settings.home) / "cache" / "user"
    result = fetch_chunk([SpectrumReference(access_url=u) for u in urls], str(cache), {})
    assert len(result.features) == 0
    assert [f.reason for f in result.failures] == [Reason.FETCH_REFUSED] * 3


def test_a_root_the_operator_lists_is_trusted_without_an_ingest(tree, tmp_path):
    """``ALVO_ARCHIVE_ROOTS``: a read-only mounted release the service did not ingest."""
    settings, root, _, files = tree
    mounted = tmp_path / "mnt"
    shutil.copytree(root / "0000", mounted / "0000")
    assert archive_roots.root_id(mounted) not in archive_roots.load(settings).by_id
    listed = Settings(**{**settings.__dict__, "archive_roots": f"/nowhere{os.pathsep}{mounted}"})
    with TestClient(create_app(listed)) as client:
        url = archive_roots.load(listed).served_url(file_url(str(mounted), files[1]), "")
        response = client.get(url)
    assert response.status_code == 200 and response.content == (root / files[1]).read_bytes()


def test_rerunning_the_ingest_registers_a_root_recorded_before_roots_were(client, tree):
    """A tree ingested by an older alvo has no root: its spectra are refused until the
    operator runs the ingest again, which adds nothing but registers the root."""
    from service.jobs.ingest.tree import ingest_tree
    from service.store import schema

    settings, root, rid, _ = tree
    with Datasets(settings).engine.begin() as conn:
        conn.execute(schema.archive_root.delete())
    rows = client.get("/campaigns/tree/batch").json()["rows"]
    assert {row["spectrum"]["error"].split(":")[0] for row in rows} == {"OUTSIDE_ARCHIVE_ROOT"}
    assert all(row["access_url"].startswith("file://") for row in rows)
    assert ingest_tree(settings, root, "pool", workers=1)["added"] == 0
    assert archive_roots.load(settings).by_id == {rid: root.resolve()}
    assert all(
        "flux" in row["spectrum"] for row in client.get("/campaigns/tree/batch").json()["rows"]
    )

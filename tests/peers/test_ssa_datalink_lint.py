"""Every SSA and DataLink document passes STILTS votlint and datalinklint cleanly.

A real uvicorn serves the fixture archive (and a tree-ingested one): datalinklint fetches the links
document and then follows its access URLs and service descriptors.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest

from tests.peers.stilts import datalinklint, require_stilts, votlint
from tests.vo_fixture import served_archive


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    require_stilts()
    archive = served_archive(tmp_path_factory, n=4)
    with archive.live() as url:
        yield url, archive.catalogues


SSA_REQUESTS = {
    "cone": {"POS": "10.01,59.99", "SIZE": "0.1"},
    "overflow": {"MAXREC": "1"},
    "metadata": {"FORMAT": "METADATA"},
    "sdm-access": {"FORMAT": "votable", "BAND": "6.5e-7/6.6e-7"},
    "binary2": {"RESPONSEFORMAT": "application/x-votable+xml;serialization=BINARY2"},
    "empty": {"BAND": "1e-6/"},
    "error-bad-pos": {"POS": "ten,sixty"},
    "error-maxrec": {"MAXREC": "-1"},
}


@pytest.mark.parametrize("case", sorted(SSA_REQUESTS))
def test_ssa_documents_pass_votlint(served, case):
    url, _ = served
    query = urlencode({"REQUEST": "queryData", **SSA_REQUESTS[case]})
    assert votlint(f"{url}/ssa/ondrejov?{query}") == []


def test_error_for_unknown_collection_passes_votlint(served):
    url, _ = served
    assert votlint(f"{url}/ssa/sdss?REQUEST=queryData") == []


@pytest.mark.parametrize("collection", ["ondrejov", "lamost"])
def test_links_pass_datalinklint_and_votlint(served, collection):
    url, catalogues = served
    ids = [*catalogues[collection]["pubdid"][:2], "ivo://alvo.demo/nothing?here"]
    links = f"{url}/datalink/{collection}?" + "&".join(f"ID={quote(i, safe='')}" for i in ids)
    assert datalinklint(links) == []
    assert votlint(links) == []


def test_spectrum_dm_cutout_passes_votlint(served):
    url, catalogues = served
    pubdid = quote(catalogues["lamost"]["pubdid"][0], safe="")
    cutout = f"{url}/datalink/lamost/proc?ID={pubdid}&BAND=6.5e-7%206.6e-7&RESPONSEFORMAT=votable"
    assert votlint(cutout) == []


@pytest.mark.parametrize("serialization", ["tabledata", "binary2", "binary"])
def test_every_encoded_datatype_passes_votlint(serialization):
    from tests.test_votable_encoding import document

    assert votlint(document(serialization)) == []


def test_generated_demo_archive_passes_votlint_and_datalinklint(tmp_path_factory):
    """The simulator's own files and catalogue, not only the test fixture, lint clean."""
    from service.archive.catalogue import load_catalogue
    from service.archive.generate import ensure_demo_archive
    from tests.vo_fixture import ServedArchive

    require_stilts()
    home = tmp_path_factory.mktemp("demo-home")
    ensure_demo_archive(home, 12)
    archive = ServedArchive(home, {c: load_catalogue(home, c) for c in ("ondrejov", "lamost")})
    with archive.live() as url:
        for collection, catalogue in archive.catalogues.items():
            assert votlint(f"{url}/ssa/{collection}?REQUEST=queryData&MAXREC=5") == []
            ids = "&".join(f"ID={quote(str(p), safe='')}" for p in catalogue["pubdid"][:3])
            assert datalinklint(f"{url}/datalink/{collection}?{ids}") == []


def test_tree_ingested_archive_links_pass_datalinklint(tmp_path_factory):
    """DataLink of an operator's archive root (``/archive/{root_id}/datalink``): the same
    checks, datalinklint following ``#this``, ``#preview`` and the cutout descriptor."""
    from service.app import create_app
    from service.archive.generate import generate_archive
    from service.jobs.ingest.tree import ingest_tree
    from service.settings import Settings
    from service.store.datasets import Datasets
    from tests.vo_fixture import free_port, live_server

    require_stilts()
    folder = tmp_path_factory.mktemp("tree-lint")
    generate_archive(folder / "make", "lamost", 4, seed=3)
    root = folder / "make" / "archive" / "lamost"
    (root / "catalogue.fits").unlink()
    port = free_port()
    settings = Settings(home=folder / "home", port=port, demo_archive_size=0)
    rid = ingest_tree(settings, root, "pool", workers=1)["root_id"]
    datasets = Datasets(settings)
    pubdids = datasets.spectra(datasets.require("pool"), ["pubdid"])["pubdid"][:2]
    ids = "&".join(f"ID={quote(str(p), safe='')}" for p in [*pubdids, "ivo://x/none?here"])
    with live_server(create_app(settings), port) as url:
        links = f"{url}/archive/{rid}/datalink?{ids}"
        assert datalinklint(links) == []
        assert votlint(links) == []

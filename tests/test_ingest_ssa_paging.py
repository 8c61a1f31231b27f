"""SSA ingest past one answer's MAXREC: sky tiles against the real embedded SSA.

The archive (a LAMOST collection written here) holds spectra in and around a
1-degree cone, a few far away, and a clump of spectra at one position (one
star's epochs), served with ``ALVO_SSA_MAXREC=50``: every query that matters
overflows, so the listing must page by tiles to find them all.
"""

from __future__ import annotations

import io
import math

import httpx
import numpy as np
import pytest
from astropy.table import Table
from lxml import etree

from service.net.uws_client import follow, submit
from service.settings import Settings
from service.spectra import sky_tiles
from service.spectra.access import SSAQuery, ssa_listing
from service.store.datasets import Datasets
from tests.vo_fixture import free_port, live_server, write_lamost

SERVER_MAXREC = 50
CONE = (150.0, 20.0)
SIZE = 1.0
N_INSIDE, N_CORNERS, N_FAR, N_CLUMP = 150, 20, 30, 60
CLUMP = (40.0, 5.0)


def _positions() -> list[tuple[float, float, str]]:
    rng = np.random.default_rng(13)
    out = []
    for _ in range(N_INSIDE):  # uniform within 0.48 deg of the cone centre
        r, phi = 0.48 * math.sqrt(rng.random()), 2 * math.pi * rng.random()
        dec = CONE[1] + r * math.sin(phi)
        out.append((CONE[0] + r * math.cos(phi) / math.cos(math.radians(dec)), dec, "inside"))
    for i in range(N_CORNERS):  # in the cone's bounding box, outside the cone
        sx, sy = (1, -1)[i % 2], (1, -1)[(i // 2) % 2]
        dec = CONE[1] + sy * (0.42 + 0.002 * i)
        out.append((CONE[0] + sx * 0.42 / math.cos(math.radians(dec)), dec, "corner"))
    for _ in range(N_FAR):
        out.append((float(rng.uniform(200, 320)), float(rng.uniform(-60, 60)), "far"))
    out += [(CLUMP[0], CLUMP[1], "clump")] * N_CLUMP
    return out


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A live alvo (jobs on) whose SSA answers at most 50 rows a query."""
    home = tmp_path_factory.mktemp("paging-home")
    root = home / "archive" / "lamost"
    (root / "spectra").mkdir(parents=True)
    rows = []
    for i, (ra, dec, where) in enumerate(_positions()):
        obsid = f"pg{i:06d}"
        relative = f"spectra/{obsid}.fits"
        length = write_lamost(root / relative, f"J{i:04d}", ra % 360.0, dec, 2.0)
        start, end = 10**3.5682 * 1e-10, 10 ** (3.5682 + 1e-4 * (length - 1)) * 1e-10
        rows.append(
            dict(
                pubdid=f"ivo://alvo.demo/lamost?{obsid}", obsid=obsid, designation=f"J{i:04d}",
                object=where, ra=ra % 360.0, dec=dec, mjd=56000.0 + i, snr=30.0,
                pipeline_class="STAR", label="", spec_start=start, spec_end=end,
                file=relative, format="application/fits",
                size=(root / relative).stat().st_size, magnitude=12.0,
            )
        )  # fmt: skip
    catalogue = Table(rows=rows)
    catalogue.write(root / "catalogue.fits")
    port = free_port()
    settings = Settings.from_env(
        {"ALVO_SSA_MAXREC": str(SERVER_MAXREC)}, home=home, port=port, demo_archive_size=0
    )
    assert settings.ssa_maxrec == SERVER_MAXREC
    from service.app import create_app

    with live_server(create_app(settings), port, lifespan="on") as url:
        yield url, settings, catalogue


def _in_cone(catalogue: Table) -> set[str]:
    return {
        str(row["pubdid"])
        for row in catalogue
        if sky_tiles.in_cone(float(row["ra"]), float(row["dec"]), CONE, SIZE)
    }


def test_embedded_ssa_says_overflow_after_the_table(archive):
    """DALI 1.1: QUERY_STATUS OK before the TABLE, OVERFLOW after it, when MAXREC cut it."""
    base, _, _ = archive
    answer = httpx.get(
        f"{base}/ssa/lamost",
        params={"REQUEST": "queryData", "POS": "150,20", "SIZE": "1", "MAXREC": "1000"},
    )
    root = etree.fromstring(answer.content)
    ns = {"v": root.nsmap[None]}
    results = root.find("v:RESOURCE[@type='results']", ns)
    children = [etree.QName(child).localname for child in results]
    statuses = results.findall("v:INFO[@name='QUERY_STATUS']", ns)
    assert [info.get("value") for info in statuses] == ["OK", "OVERFLOW"]
    assert children.index("TABLE") < results.index(statuses[1])
    assert results.index(statuses[0]) < children.index("TABLE")
    assert len(results.findall("v:TABLE/v:DATA/v:TABLEDATA/v:TR", ns)) == SERVER_MAXREC
    whole = httpx.get(f"{base}/ssa/lamost", params={"REQUEST": "queryData", "MAXREC": "10"})
    assert b'value="OVERFLOW"' in whole.content


def test_overflowing_ssa_ingest_adds_every_spectrum_in_the_cone(archive):
    """150 spectra in the cone, 50 a query: the job pages by tiles and adds each once."""
    base, settings, catalogue = archive
    expected = _in_cone(catalogue)
    assert len(expected) == N_INSIDE
    messages: list[str] = []
    parameters = [
        ("DATASET", "paged"),
        ("SSA", f"{base}/ssa/lamost"),
        ("POS", f"{CONE[0]},{CONE[1]}"),
        ("SIZE", str(SIZE)),
    ]
    status = follow(submit(f"{base}/ingest", parameters), lambda s: messages.append(str(s)))
    assert status.phase == "COMPLETED", status.error
    summary = httpx.get(status.results["summary"][0]).json()
    assert summary["added"] == N_INSIDE and summary["failed"] == 0, summary
    ssa = summary["ssa"]
    assert ssa["listed"] == N_INSIDE and ssa["queries"] > 1 and ssa["tiles"] == ssa["queries"] - 1
    assert ssa["too_dense_tiles"] == 0 and ssa["capped_at_maxrec"] is False
    datasets = Datasets(settings)
    pubdids = list(datasets.spectra(datasets.require("paged"), ["pubdid"])["pubdid"])
    assert len(pubdids) == len(set(pubdids)) and set(pubdids) == expected


def test_user_maxrec_caps_the_total(archive):
    base, _, catalogue = archive
    listing = ssa_listing(f"{base}/ssa/lamost", SSAQuery(pos=CONE, size=SIZE, maxrec=70))
    keys = [r.pubdid for r in listing.references]
    assert len(keys) == 70 and len(set(keys)) == 70 and set(keys) <= _in_cone(catalogue)
    assert listing.capped and listing.queries > 1


def test_whole_sky_listing_pages_and_names_the_clump_too_dense(archive):
    """No POS: a coarse grid; the clump (60 at one position > 50) cannot be split."""
    base, _, catalogue = archive
    reports: list[int] = []
    listing = ssa_listing(
        f"{base}/ssa/lamost", SSAQuery(), progress=lambda got: reports.append(got.queries)
    )
    keys = [r.pubdid for r in listing.references]
    assert len(keys) == len(set(keys)) == len(catalogue) - N_CLUMP + SERVER_MAXREC
    assert [error.reason.code for error in listing.too_dense] == ["SSA_TOO_DENSE"]
    assert reports == list(range(1, listing.queries + 1))
    assert listing.tiles >= len(sky_tiles.first_tiles(None, None))


def test_too_dense_tile_is_a_named_failure_of_the_job(archive):
    base, _, _ = archive
    parameters = [
        ("DATASET", "clump"),
        ("SSA", f"{base}/ssa/lamost"),
        ("POS", f"{CLUMP[0]},{CLUMP[1]}"),
        ("SIZE", "0.2"),
    ]
    status = follow(submit(f"{base}/ingest", parameters), lambda s: None)
    assert status.phase == "COMPLETED", status.error
    summary = httpx.get(status.results["summary"][0]).json()
    assert summary["reasons"] == {"SSA_TOO_DENSE": 1} and summary["added"] == SERVER_MAXREC
    assert summary["ssa"]["too_dense_tiles"] == 1
    failures = httpx.get(status.results["failures"][0]).content
    assert b"SSA_TOO_DENSE" in failures and io.BytesIO(failures).read(5) == b"<?xml"


# --- the tiling, as pure functions ---------------------------------------------------------------
def _points_in_cone(pos, size, n=400, seed=1):
    rng = np.random.default_rng(seed)
    points = []
    while len(points) < n:
        ra, dec = rng.uniform(0, 360), math.degrees(math.asin(rng.uniform(-1, 1)))
        if pos is None or sky_tiles.in_cone(ra, dec, pos, size):
            points.append((ra, dec))
        elif rng.random() < 0.01:  # small cones: sample near the centre instead
            r, phi = size / 2 * math.sqrt(rng.random()), 2 * math.pi * rng.random()
            d = max(-90.0, min(90.0, pos[1] + r * math.sin(phi)))
            a = pos[0] + r * math.cos(phi) / max(1e-6, math.cos(math.radians(d)))
            if sky_tiles.in_cone(a % 360, d, pos, size):
                points.append((a % 360, d))
    return points


def _held(tile: sky_tiles.Tile, ra: float, dec: float) -> bool:
    """In the box, and inside the cone an SSA query of the tile asks."""
    centre = tile.centre
    return tile.contains(ra, dec) and sky_tiles.in_cone(ra, dec, centre, tile.diameter)


@pytest.mark.parametrize(
    "pos,size",
    [((150.0, 20.0), 1.0), ((0.2, -10.0), 3.0), ((45.0, 88.0), 6.0), ((300.0, -60.0), 120.0),
     (None, None)],
)  # fmt: skip
def test_tiles_cover_the_cone_and_quadrants_cover_their_tile(pos, size):
    tiles = sky_tiles.first_tiles(pos, size)
    assert tiles and all(tile.diameter <= 180.0 for tile in tiles)
    for ra, dec in _points_in_cone(pos, size):
        holders = [tile for tile in tiles if _held(tile, ra, dec)]
        assert holders, (ra, dec)
        tile = holders[0]
        for _ in range(6):  # recursion: some quadrant holds the point, and is smaller
            quadrants = [q for q in tile.quadrants() if sky_tiles.overlaps(q, pos, size)]
            inner = [q for q in quadrants if _held(q, ra, dec)]
            assert inner and inner[0].diameter < tile.diameter, (ra, dec, tile)
            tile = inner[0]


def test_job_progress_says_queries_tiles_and_spectra(archive, tmp_path):
    """What the job's jobInfo shows while listing: one message per SSA query."""
    from service.jobs.ingest.served import IngestRequest, gather_references
    from service.jobs.params import JobParams

    base, _, _ = archive
    params = [("DATASET", "x"), ("SSA", f"{base}/ssa/lamost"), ("POS", "150,20"), ("SIZE", "1")]
    request = IngestRequest.from_params(JobParams(params), {})
    messages: list[str] = []
    listings: list = []
    references, failures = gather_references(
        request, tmp_path, None, lambda _, message: messages.append(message), listings
    )
    assert len(references) == N_INSIDE and failures == []
    queries = listings[0].queries
    assert len(messages) == queries > 1
    assert messages[0] == f"listing SSA: 1 queries, 0 tiles, {SERVER_MAXREC} spectra"
    assert (
        messages[-1] == f"listing SSA: {queries} queries, {queries - 1} tiles, {N_INSIDE} spectra"
    )


@pytest.mark.parametrize(
    "where",
    ["after the table", "before the table", "in the VOTABLE"],
)
def test_overflow_is_read_wherever_a_service_puts_it(where):
    from astropy.io.votable import parse

    from service.spectra.access import overflowed

    info = '<INFO name="QUERY_STATUS" value="OVERFLOW"/>'
    table = '<TABLE><FIELD name="a" datatype="int"/><DATA><TABLEDATA/></DATA></TABLE>'
    resource = {
        "after the table": f'<RESOURCE type="results">{table}{info}</RESOURCE>',
        "before the table": f'<RESOURCE type="results">{info}{table}</RESOURCE>',
        "in the VOTABLE": f'{info}<RESOURCE type="results">{table}</RESOURCE>',
    }[where]
    document = (
        f'<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">{resource}</VOTABLE>'
    ).encode()
    assert overflowed(parse(io.BytesIO(document), verify="ignore"))
    ok = document.replace(b"OVERFLOW", b"OK")
    assert not overflowed(parse(io.BytesIO(ok), verify="ignore"))

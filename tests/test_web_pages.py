"""The oracle pages' server side: the batch document, its VOTable twin, undo, performance."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from astropy.io.votable import parse_single_table
from starlette.testclient import TestClient

from service.app import create_app
from service.spectra import read_spectrum
from service.spectra.lines import halpha_equivalent_width
from service.store.datasets import Datasets
from service.web.oracle import OVERVIEW_PIXELS, WINDOW
from tests.votable_check import votable_problems
from tests.web_world import build_world


def floats(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("oracle-home"), port=8000)


@pytest.fixture
def client(world):
    settings = world.settings.__class__(**{**world.settings.__dict__, "auth": "header"})
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_batch_document_holds_every_query_row_with_its_data(client, world):
    document = client.get("/campaigns/be/batch", headers={"X-Forwarded-User": "ana"}).json()
    assert document["iteration"] == 0 and document["user"] == "ana"
    rows = document["rows"]
    assert [r["id"] for r in rows[:100]] == world.query_ids
    assert {r["role"] for r in rows[100:]} == {"precision-sample"}
    assert len(rows) == 100 + len(world.sample_ids)
    features = Datasets(world.settings).require("pool").features.array()
    row = rows[5]
    pool_row = int(row["pubdid"].rsplit("?", 1)[1])
    np.testing.assert_array_equal(floats(row["adapted"]), features[pool_row])
    assert len(document["wavelengths"]) == 1  # all LAMOST files share one grid: sent once
    # native pixels are those of the file in the fetch cache, cut to the window
    from service.net.fetch import Fetcher

    path = Fetcher(world.settings.home / "cache" / "spectra").cache_path(row["access_url"])
    spectrum = read_spectrum(path)
    lam = floats(document["wavelengths"][row["spectrum"]["grid"]])
    flux = floats(row["spectrum"]["flux"])
    inside = (spectrum.wavelength >= lam[0]) & (spectrum.wavelength <= lam[-1])
    np.testing.assert_allclose(flux, spectrum.flux[inside], rtol=1e-6)
    assert WINDOW[0] - 2 < lam[0] < WINDOW[0] + 2 and WINDOW[1] - 2 < lam[-1] < WINDOW[1] + 2
    assert abs(sum(row["p"]) - 1) < 1e-6 and row["predicted"] in document["classes"]
    assert set(document["exemplars"]) == {"single-peak", "double-peak", "absorption"}
    assert len(floats(document["exemplars"]["absorption"]["mean"])) == 140
    ben = [r for r in rows if r["labels"]]
    assert len(ben) == 2 and all(set(r["labels"]) == {"ben"} for r in ben)


def test_same_star_history_and_missing_files(client, world):
    rows = {r["id"]: r for r in client.get("/campaigns/be/batch").json()["rows"]}
    first, second = rows[world.query_ids[0]], rows[world.query_ids[1]]
    assert first["designation"] == second["designation"]
    # ben judged both observations: each shows the other's verdict as the same star's history
    assert [h["label"] for h in first["history"]] == [second["labels"]["ben"]]
    assert first["history"][0]["same_spectrum"] is False
    assert rows[world.query_ids[2]]["simbad"] == "* gam Cas"
    close = rows[world.query_ids[3]]["neighbours"]
    assert [x["spectrum_id"] for x in close] == [world.neighbour]
    assert close[0]["separation_arcsec"] == pytest.approx(2.0, abs=0.01)
    assert sum(bool(r["neighbours"]) for r in rows.values()) == 1
    assert rows[world.missing_file]["spectrum"] == {"error": "not in the fetch cache"}
    assert sum("flux" in r["spectrum"] for r in rows.values()) == len(rows) - 1


def test_same_star_in_another_archive_is_overplotted_not_a_neighbour(client, world):
    """The twin at 0" is the same star (its spectrum comes along to be overplotted);
    only other sources within the fibre are neighbours."""
    rows = client.get("/campaigns/be/batch").json()["rows"]
    star = next(r for r in rows if any(t["spectrum_id"] == world.twin for t in r["twins"]))
    assert star["id"] == world.query_ids[4]
    assert world.twin not in {x["spectrum_id"] for r in rows for x in r["neighbours"]}
    (twin,) = star["twins"]
    assert twin["separation_arcsec"] == 0 and twin["collection"] == "other"
    assert twin["mjd"] == 55000.5 and len(floats(twin["spectrum"]["flux"])) > 50
    assert sum(bool(r["twins"]) for r in rows) == 1


def test_each_row_has_an_error_band_a_wide_view_and_a_reason(client, world):
    document = client.get("/campaigns/be/batch").json()
    assert set(document["lines"]) >= {"Hα", "Hβ", "He I 6678"}
    signs: list[tuple[int, float]] = []
    for row in document["rows"]:
        if row["id"] == world.missing_file:
            assert "error" in row["overview"]
            continue
        flux, sigma = floats(row["spectrum"]["flux"]), floats(row["spectrum"]["sigma"])
        assert sigma.shape == flux.shape and np.nanmedian(sigma) == pytest.approx(10, rel=1e-3)
        wide = floats(document["overview_wavelengths"][row["overview"]["grid"]])
        assert wide[0] < 4862 and wide[-1] > 6680  # H-beta to He I 6678
        assert len(wide) <= OVERVIEW_PIXELS and len(floats(row["overview"]["flux"])) == len(wide)
        assert row["reason"] and row["flux_unit"] == "relative flux"
        # EW(Hα) in Å with its error, from the same pixels (negative: emission)
        ew, error = row["spectrum"]["ew_halpha"]
        grid = floats(document["wavelengths"][row["spectrum"]["grid"]])
        expected = halpha_equivalent_width(grid, flux[None], sigma[None])
        assert ew == pytest.approx(expected[0][0]) and error == pytest.approx(expected[1][0])
        kind = world.kinds[int(row["pubdid"].rsplit("?", 1)[1])]
        signs.append((kind, ew))
    # the simulated emission-line spectra have negative EWs, absorption ones positive
    assert np.median([ew for kind, ew in signs if kind < 2]) < -1
    assert np.median([ew for kind, ew in signs if kind == 2]) > 0


def test_batch_votable_rows_match_the_page_order(client, world):
    body = client.get("/campaigns/be/candidates?ROLE=query&ITERATION=0").content
    assert votable_problems(body) == []
    table = parse_single_table(io.BytesIO(body)).to_table()
    page = client.get("/campaigns/be/batch").json()["rows"]
    assert list(table["pubdid"]) == [r["pubdid"] for r in page]


def test_undo_restores_the_users_earlier_verdict(client):
    ana = {"X-Forwarded-User": "ana"}
    rows = client.get("/campaigns/be/batch", headers=ana).json()["rows"]
    sid = rows[10]["id"]
    for label in ("absorption", "bad"):
        body = {"source": "page", "labels": [{"spectrum_id": sid, "label": label, "iteration": 0}]}
        assert client.post("/campaigns/be/labels", json=body, headers=ana).json()["stored"] == 1
    assert (
        client.post("/campaigns/be/labels/undo", json={"spectrum_id": sid}, headers=ana).json()[
            "label"
        ]
        == "absorption"
    )
    assert (
        client.post("/campaigns/be/labels/undo", json={"spectrum_id": sid}, headers=ana).json()[
            "label"
        ]
        is None
    )
    again = client.post("/campaigns/be/labels/undo", json={"spectrum_id": sid}, headers=ana)
    assert again.status_code == 200 and again.json()["label"] is None
    mine = client.get("/campaigns/be/batch", headers=ana).json()["rows"][10]
    assert mine["mine"] is None


def test_conflicts_and_confusion(client, world):
    rows = client.get("/campaigns/be/batch").json()["rows"]
    judged = next(r for r in rows if r["labels"])
    other = next(v for v in ("single-peak", "double-peak", "absorption")
                 if v != judged["labels"]["ben"])  # fmt: skip
    body = {"source": "page", "labels": [{"spectrum_id": judged["id"], "label": other}]}
    reply = client.post("/campaigns/be/labels", json=body, headers={"X-Forwarded-User": "cy"})
    assert reply.json()["conflicts"][0]["verdicts"] == {"ben": judged["labels"]["ben"], "cy": other}
    performance = client.get("/campaigns/be/performance").json()
    counted = sum(sum(c.values()) for c in performance["confusion"]["0"].values())
    assert counted == 1  # ben's other verdict; the disputed one has no consensus
    client.post("/campaigns/be/labels/undo", json={"spectrum_id": judged["id"]},
                headers={"X-Forwarded-User": "cy"})  # fmt: skip


def test_bad_parameters_are_named(client):
    assert client.get("/campaigns/be/batch?ROLE=everything").status_code == 400
    assert client.get("/campaigns/be/batch?ITERATION=x").status_code == 400
    assert client.get("/campaigns/nope/batch").status_code == 404
    ana = {"X-Forwarded-User": "ana"}  # auth=header: anonymous callers may not write (401)
    assert client.post("/campaigns/be/labels/undo", json={}, headers=ana).status_code == 400


def test_pages_and_static_files_are_served(client):
    page = client.get("/oracle/be")
    assert page.status_code == 200 and 'data-campaign="be"' in page.text
    assert client.get("/oracle").status_code == 200
    for name in ("label.js", "overview.js", "plot.js", "samp.js", "oracle.css"):
        assert client.get(f"/oracle-static/{name}").status_code == 200, name

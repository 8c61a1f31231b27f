"""``/campaigns/{name}/moc``: the pool's footprint as a MOC that mocpy reads back."""

from __future__ import annotations

import io

import astropy.units as u
import httpx
from astropy.io import fits
from mocpy import MOC

from service.store.campaigns import Campaigns
from tests.web_world import served_world


def test_pool_footprint_moc_in_fits_and_json(tmp_path):
    with served_world(tmp_path) as (url, world):
        spectra = Campaigns(world.settings)
        pool = spectra.require(world.campaign).target
        where = spectra.datasets.spectra(pool, ["ra", "dec"])
        ra, dec = where["ra"].astype(float), where["dec"].astype(float)

        answer = httpx.get(f"{url}/campaigns/{world.campaign}/moc")
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/fits"
        with fits.open(io.BytesIO(answer.content)) as hdus:
            assert hdus[1].header["ORDERING"] in ("NUNIQ", "RANGE")  # a MOC, as Aladin reads it
        footprint = MOC.from_fits(io.BytesIO(answer.content))
        assert footprint.max_order == 10
        inside = footprint.contains_lonlat(ra * u.deg, dec * u.deg)
        assert inside.all()  # every pool spectrum is in its campaign's footprint
        away = footprint.contains_lonlat((ra + 7.0) % 360 * u.deg, dec * u.deg)
        assert away.mean() < 0.2  # ... and the footprint is not the whole sky
        assert footprint.sky_fraction < 0.01

        as_json = httpx.get(
            f"{url}/campaigns/{world.campaign}/moc",
            params={"RESPONSEFORMAT": "json", "MOCORDER": "6"},
        )
        assert as_json.headers["content-type"] == "application/json"
        coarse = MOC.from_json(as_json.json())
        assert coarse.max_order == 6 and coarse.contains_lonlat(ra * u.deg, dec * u.deg).all()
        assert coarse.sky_fraction >= footprint.sky_fraction

        assert httpx.get(f"{url}/campaigns/nope/moc").status_code == 404
        bad = httpx.get(f"{url}/campaigns/{world.campaign}/moc", params={"MOCORDER": "40"})
        assert bad.status_code == 400

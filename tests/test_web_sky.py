"""The sky panel's service side: the demo sky's image, ``/sky`` and Aladin Lite's file.

The panel itself, in Chromium over a Hipsgen-made HiPS: tests/peers/test_web_sky.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

from service.app import create_app
from service.archive.skyimage import MAX_SIDE, field_around, field_image
from service.settings import Settings
from service.web.sky import MOCSERVER


def test_demo_sky_image_puts_each_spectrum_star_where_its_wcs_says():
    ra = np.array([83.60, 83.70, 83.65])
    dec = np.array([22.00, 22.05, 21.95])
    field = field_around(ra, dec)
    hdu = field_image(field, ra, dec, np.array([9.0, 14.0, 14.0]))
    image = hdu.data
    assert image.shape == (field.side, field.side) and image.dtype == np.float32
    from astropy.wcs import WCS

    x, y = WCS(hdu.header).all_world2pix(ra, dec, 0)
    assert ((x > 0) & (x < field.side) & (y > 0) & (y < field.side)).all()
    # the brightest pixel is the 9-mag star's, at its WCS position
    peak_y, peak_x = np.unravel_index(np.argmax(image), image.shape)
    assert abs(peak_x - x[0]) <= 1 and abs(peak_y - y[0]) <= 1
    # each 14-mag star stands far above the sky (100 +- 5 counts)
    for k in (1, 2):
        assert image[round(y[k]), round(x[k])] > 300
    assert np.median(image) == pytest.approx(100, abs=2)
    # a whole LAMOST plate stays a bounded image
    plate = field_around(np.array([80.0, 85.0]), np.array([20.0, 24.5]))
    assert plate.side <= MAX_SIDE + 1 and plate.half_width > 2


def client(tmp_path, **settings) -> TestClient:
    return TestClient(create_app(Settings(home=tmp_path, demo_archive_size=0, **settings)))


def test_sky_context_uses_the_hips_setting_without_a_demo_sky(tmp_path):
    missing = tmp_path / "no-aladin.js"
    with client(tmp_path, aladin_lite=str(missing)) as web:
        sky = web.get("/sky", params={"RA": "10.5", "DEC": "-3.25"}).json()
        assert sky["survey"] == {
            "id": "CDS/P/DSS2/color", "url": None, "name": "CDS/P/DSS2/color", "local": False,
            "probe": f"{MOCSERVER}?ID=CDS/P/DSS2/color&get=record&fmt=json",
        }  # fmt: skip
        assert sky["fibre_diameter_arcsec"] == 3.3 and sky["neighbours"] == []
        assert sky["aladin_lite"] is None  # the panel says it is not installed
        script = web.get("/sky/aladin-lite.js")
        assert script.status_code == 404 and "make aladin-lite" in script.text
        assert web.get("/sky", params={"RA": "400", "DEC": "0"}).status_code == 400
        assert web.get("/sky", params={"RA": "1", "DEC": "x"}).status_code == 400
        assert web.get("/sky/demo/properties").status_code == 404  # no demo sky made
    script = tmp_path / "aladin.js"
    script.write_text("export default {};")
    url = "https://example.org/hips/DSS2"
    with client(tmp_path, hips=url + "/", aladin_lite=str(script)) as web:
        sky = web.get("/sky", params={"RA": "10.5", "DEC": "-3.25"}).json()
        assert sky["survey"]["url"] == url and sky["survey"]["probe"] == url + "/properties"
        assert sky["aladin_lite"] == "sky/aladin-lite.js"
        served = web.get("/sky/aladin-lite.js")
        assert served.status_code == 200 and served.headers["content-type"].startswith(
            "text/javascript"
        )
    with client(tmp_path, hips="off") as web:
        assert web.get("/sky", params={"RA": "1", "DEC": "1"}).json()["survey"] is None

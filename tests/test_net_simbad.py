"""SIMBAD cross-match through the real astroquery code, on recorded SIMBAD answers.

There is no network here: a requests adapter on astroquery's session plays
back a SIMBAD TAP capabilities document and a cone-list answer, so the
parsing and the nearest-match logic are exercised exactly as online.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import requests
import urllib3

from service.net.simbad import simbad_identify

RECORDED = Path(__file__).parent / "data" / "simbad"


class RecordedSimbad(requests.adapters.BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def send(self, request, **kwargs):
        response = requests.Response()
        response.status_code = 200
        response.request = request
        response.url = request.url
        response.headers["Content-Type"] = "text/xml"
        if request.url.endswith("/capabilities"):
            body = (RECORDED / "capabilities.xml").read_bytes()
        else:
            self.queries.append(requests.utils.unquote(str(request.body)))
            body = (RECORDED / "region.vot").read_bytes()
        response._content = body
        # pyvo streams some documents from the raw urllib3 response
        response.raw = urllib3.HTTPResponse(body=io.BytesIO(body), preload_content=False)
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def simbad():
    from astroquery.simbad import Simbad

    client = Simbad()
    recorder = RecordedSimbad()
    client._session.mount("https://", recorder)
    client.recorder = recorder
    return client


def test_nearest_object_within_radius(simbad):
    ra = [14.17722, 117.06400, 200.0, float("nan")]
    dec = [60.71673, -3.11290, 10.0, 0.0]
    match = simbad_identify(ra, dec, radius_arcsec=3.0, simbad=simbad)
    assert match.skipped == ""
    # gamma Cas within 0.04"; BT CMi 0.75" away; nothing near (200, 10); NaN not asked
    assert match.identifiers == ["* gam Cas", "V* BT CMi", None, None]
    (query,) = simbad.recorder.queries
    assert "CONTAINS" in query and query.count("CIRCLE") == 3


def test_unreachable_simbad_is_skipped_with_a_reason():
    match = simbad_identify([14.17], [60.7])  # no network here: the real client fails
    assert match.identifiers == [None]
    assert match.skipped.startswith("SIMBAD not reachable")

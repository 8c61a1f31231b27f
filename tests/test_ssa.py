"""SSA 1.1 at /ssa/{collection}: selection, metadata, limits and refusals.

Expected rows are computed independently of the service (astropy SkyCoord
separations, astropy Time for ISO dates) from the fixture's own catalogue.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse
from astropy.time import Time
from lxml import etree

from service.vo import dali
from tests.vo_fixture import served_archive

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
STANDARD_UTYPES = {
    "ssa:Access.Reference",
    "ssa:Access.Format",
    "ssa:Access.Size",
    "ssa:DataID.Title",
    "ssa:DataID.Collection",
    "ssa:Target.Name",
    "ssa:Char.SpatialAxis.Coverage.Location.Value",
    "ssa:Char.SpectralAxis.Coverage.Bounds.Start",
    "ssa:Char.SpectralAxis.Coverage.Bounds.Stop",
    "ssa:Char.SpectralAxis.Resolution",
    "ssa:Char.TimeAxis.Coverage.Location.Value",
    "ssa:Curation.PublisherDID",
    "ssa:Derived.SNR",
    "ssa:Dataset.Length",
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return served_archive(tmp_path_factory, n=6)


@pytest.fixture(scope="module")
def client(archive):
    return archive.client


def ssa(client, collection="ondrejov", method="get", **params):
    params = {"REQUEST": "queryData", **params}
    if method == "post":
        response = client.post(f"/ssa/{collection}", data=params)
    else:
        response = client.get(f"/ssa/{collection}", params=params)
    return response


def rows(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-votable+xml")
    return parse(io.BytesIO(response.content)).get_first_table().to_table()


def error_text(response, status=400):
    assert response.status_code == status
    root = etree.fromstring(response.content)
    info = root.find(f"{VOT}RESOURCE/{VOT}INFO[@name='QUERY_STATUS']")
    assert info is not None and info.get("value") == "ERROR"
    return info.text


def test_cone_search_matches_astropy_separations_nearest_first(client, archive):
    cats = archive.catalogues
    cat = cats["ondrejov"]
    centre = SkyCoord(10.021 * u.deg, 59.979 * u.deg)
    separation = centre.separation(SkyCoord(cat["ra"] * u.deg, cat["dec"] * u.deg)).deg
    diameter = 0.03
    expected = list(cat["pubdid"][np.argsort(separation)][np.sort(separation) <= diameter / 2])
    table = rows(ssa(client, POS="10.021,59.979;ICRS", SIZE=str(diameter)))
    assert 0 < len(expected) < len(cat)
    assert list(table["ssa_pubDID"]) == expected


def test_band_overlap_with_open_ranges_in_metres(client, archive):
    cats = archive.catalogues
    n = len(cats["ondrejov"])
    assert len(rows(ssa(client, BAND="6.5e-7/6.6e-7"))) == n
    assert len(rows(ssa(client, BAND="/6.3e-7"))) == n
    assert len(rows(ssa(client, BAND="6.8e-7/"))) == 0  # CCD700 stops at 6763 A
    assert len(rows(ssa(client, BAND="6.563e-7"))) == n  # one wavelength inside
    assert len(rows(ssa(client, "lamost", BAND="8.5e-7/8.6e-7,1e-5/"))) == n


def test_band_in_angstrom_is_refused_with_the_conversion(client):
    message = error_text(ssa(client, BAND="6500/6600"))
    assert message.startswith("BAD_PARAMETER: BAND")
    assert "metres" in message and "6.5e-07" in message


def test_time_ranges_as_mjd_and_iso(client, archive):
    cats = archive.catalogues
    mjd = np.asarray(cats["ondrejov"]["mjd"])
    lo, hi = 56015.0, 56035.0
    expected = set(cats["ondrejov"]["pubdid"][(mjd >= lo) & (mjd <= hi)])
    assert set(rows(ssa(client, TIME=f"{lo}/{hi}"))["ssa_pubDID"]) == expected
    iso = "/".join(Time([lo, hi], format="mjd", scale="utc").isot)
    assert set(rows(ssa(client, TIME=iso))["ssa_pubDID"]) == expected
    assert len(expected) == 2
    assert error_text(ssa(client, TIME="yesterday/today")).startswith("BAD_PARAMETER: TIME")


def test_pubdid_and_targetname_select_one_spectrum(client, archive):
    cats = archive.catalogues
    pubdid = cats["ondrejov"]["pubdid"][3]
    assert list(rows(ssa(client, PUBDID=pubdid))["ssa_pubDID"]) == [pubdid]
    name = cats["ondrejov"]["object"][4]
    table = rows(ssa(client, TARGETNAME=name.lower().replace(" ", "")))
    assert list(table["ssa_targname"]) == [name]


def test_maxrec_truncates_and_reports_overflow_after_the_table(client):
    response = ssa(client, MAXREC="2")
    assert len(rows(response)) == 2
    resource = etree.fromstring(response.content).find(f"{VOT}RESOURCE[@type='results']")
    children = [child.tag.removeprefix(VOT) for child in resource]
    statuses = resource.findall(f"{VOT}INFO[@name='QUERY_STATUS']")
    assert [s.get("value") for s in statuses] == ["OK", "OVERFLOW"]
    assert children.index("TABLE") < list(resource).index(statuses[-1])
    full = ssa(client, MAXREC="6")
    assert b"OVERFLOW" not in full.content and len(rows(full)) == 6


@pytest.mark.parametrize(
    ("params", "starts"),
    [
        ({"MAXREC": "-1"}, "BAD_PARAMETER: MAXREC"),
        ({"MAXREC": "lots"}, "BAD_PARAMETER: MAXREC"),
        ({"POS": "10.0"}, "BAD_PARAMETER: POS"),
        ({"POS": "10,95"}, "BAD_PARAMETER: POS: Dec 95"),
        ({"POS": "10,60;GALACTIC"}, "BAD_PARAMETER: POS: frame"),
        ({"SIZE": "-1"}, "BAD_PARAMETER: SIZE"),
        ({"FORMAT": "bogus"}, "BAD_PARAMETER: FORMAT"),
        ({"RESPONSEFORMAT": "text/csv"}, "BAD_PARAMETER: RESPONSEFORMAT"),
        ({"REQUEST": "getData"}, "BAD_PARAMETER: REQUEST"),
    ],
)
def test_bad_parameters_are_dali_errors(client, params, starts):
    assert error_text(ssa(client, **params)).startswith(starts)


def test_missing_request_and_unknown_collection(client):
    assert "REQUEST" in error_text(client.get("/ssa/ondrejov", params={"POS": "10,60"}))
    message = error_text(ssa(client, "sdss"), status=404)
    assert message.startswith("UNKNOWN_COLLECTION") and "lamost" in message


def test_parameter_names_are_case_insensitive_and_post_equals_get(client):
    lower = client.get("/ssa/ondrejov", params={"request": "querydata", "maxrec": "3"})
    assert len(rows(lower)) == 3
    posted = rows(ssa(client, method="post", POS="10.02,59.98", SIZE="0.05"))
    got = rows(ssa(client, POS="10.02,59.98", SIZE="0.05"))
    assert list(posted["ssa_pubDID"]) == list(got["ssa_pubDID"])


def test_response_carries_standard_utypes_and_datalink_descriptor(client):
    response = ssa(client, MAXREC="1")
    votable = parse(io.BytesIO(response.content))
    utypes = {field.utype for field in votable.get_first_table().fields}
    assert utypes >= STANDARD_UTYPES
    (descriptor,) = [r for r in votable.resources if r.utype == "adhoc:service"]
    params = {p.name: p for p in descriptor.params}
    assert params["standardID"].value == "ivo://ivoa.net/std/DataLink#links-1.1"
    assert params["accessURL"].value.endswith("/datalink/ondrejov")
    (group,) = descriptor.groups
    (id_param,) = group.entries
    assert id_param.name == "ID" and id_param.ref == "ssa_pubDID"


def test_metadata_describes_inputs_and_outputs_without_rows(client):
    response = ssa(client, FORMAT="METADATA")
    votable = parse(io.BytesIO(response.content))
    inputs = {p.name for p in votable.resources[0].params}
    assert {"INPUT:POS", "INPUT:SIZE", "INPUT:BAND", "INPUT:TIME", "INPUT:FORMAT"} <= inputs
    table = votable.get_first_table()
    assert len(table.array) == 0 and len(table.fields) > 20
    assert "INPUT:POS" not in ssa(client, MAXREC="1").text


def test_votable_format_points_to_spectrum_dm_cutouts(client):
    table = rows(ssa(client, FORMAT="votable", MAXREC="2"))
    assert set(table["mime"]) == {"application/x-votable+xml;content=spectrum"}
    assert all("/datalink/ondrejov/proc?ID=" in url for url in table["accref"])
    assert len(rows(ssa(client, FORMAT="image/png"))) == 0  # a format this archive lacks


def test_binary2_serialization_holds_the_same_rows(client):
    plain = rows(ssa(client, MAXREC="4"))
    binary = rows(
        ssa(client, MAXREC="4", RESPONSEFORMAT=dali.VOTABLE_MEDIA_TYPE + ";serialization=BINARY2")
    )
    assert list(binary["ssa_pubDID"]) == list(plain["ssa_pubDID"])
    np.testing.assert_allclose(binary["ssa_snr"], plain["ssa_snr"])


def test_vosi_capabilities_name_ssa(client):
    response = client.get("/ssa/lamost/capabilities")
    assert response.status_code == 200
    assert b'standardID="ivo://ivoa.net/std/SSA"' in response.content
    assert client.get("/ssa/lamost/availability").status_code == 200


def test_pyvo_ssaservice_queries_the_live_service(archive):
    import pyvo

    with archive.live() as url:
        service = pyvo.dal.SSAService(f"{url}/ssa/lamost")
        results = service.search(pos=SkyCoord(10.0 * u.deg, 60.0 * u.deg), diameter=0.2 * u.deg)
        assert len(results) == len(archive.catalogues["lamost"])
        record = results[0]
        assert record.ra == pytest.approx(10.0) and record.dec == pytest.approx(60.0)
        assert record.format == "application/fits"
        mjd = archive.catalogues["lamost"]["mjd"][0]  # pyvo's dateobs reads ssa:DataID.Date
        assert record.dateobs is not None and record.dateobs.mjd == pytest.approx(mjd, abs=1e-6)
        assert record.getdataurl().startswith(f"{url}/datalink/lamost/files/")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            service.search(pos=(10.0, 60.0), diameter=1.0, maxrec=2)
        assert any(issubclass(w.category, pyvo.dal.DALOverflowWarning) for w in caught)


def test_maxrec_zero_returns_metadata_and_overflow_only(client):
    response = ssa(client, MAXREC="0")
    assert len(rows(response)) == 0
    assert b'value="OVERFLOW"' in response.content


def test_create_app_serves_ssa_and_datalink(archive):
    from starlette.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    client = TestClient(create_app(Settings(home=archive.home, demo_archive_size=0)))
    assert len(rows(ssa(client, MAXREC="2"))) == 2
    pubdid = archive.catalogues["lamost"]["pubdid"][0]
    assert client.get("/datalink/lamost", params={"ID": pubdid}).status_code == 200


def test_first_request_generates_the_demo_archive(tmp_path):
    """With ALVO_DEMO_ARCHIVE_SIZE > 0 the first SSA request makes the archive it serves."""
    from starlette.testclient import TestClient

    from service.app import create_app
    from service.archive.catalogue import load_catalogue
    from service.settings import Settings

    client = TestClient(create_app(Settings(home=tmp_path, demo_archive_size=12)))
    table = rows(ssa(client, "lamost", MAXREC="100"))
    expected = load_catalogue(tmp_path, "lamost")
    assert len(table) == len(expected) == 12
    assert set(table["ssa_pubDID"]) == set(expected["pubdid"])
    assert len(rows(ssa(client, "ondrejov", MAXREC="100"))) == 12

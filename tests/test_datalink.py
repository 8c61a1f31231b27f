"""DataLink 1.1 at /datalink/{collection}: links, files, previews and the cutout service."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.io.votable import parse

from service.spectra import read_spectrum
from tests.vo_fixture import ServedArchive, catalogue_real_files, served_archive

SDM = "application/x-votable+xml;content=spectrum"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    return served_archive(tmp_path_factory, n=4)


@pytest.fixture(scope="module")
def archive(served):
    """(home, catalogues) of the served fixture archive."""
    return served.home, served.catalogues


@pytest.fixture(scope="module")
def client(served):
    """A starlette TestClient of the app serving it."""
    return served.client


def links(client, *ids, collection="ondrejov"):
    response = client.get(f"/datalink/{collection}", params=[("ID", i) for i in ids])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-votable+xml;content=datalink"
    return parse(io.BytesIO(response.content)).get_first_table().to_table(use_names_over_ids=True)


def test_links_of_one_spectrum_are_this_preview_and_proc(client, archive):
    _, cats = archive
    pubdid = cats["ondrejov"]["pubdid"][0]
    table = links(client, pubdid)
    assert list(table["semantics"]) == ["#this", "#preview", "#proc"]
    assert set(table["ID"]) == {pubdid}
    for row in table:  # exactly one of access_url, service_def, error_message per row
        filled = [not np.ma.is_masked(row[c]) and row[c] != "" for c in
                  ("access_url", "service_def", "error_message")]  # fmt: skip
        assert sum(filled) == 1
    this = table[0]
    assert this["content_type"] == "application/fits"
    assert this["content_length"] == cats["ondrejov"]["size"][0]
    assert table[2]["service_def"] == "proc"


def test_several_ids_keep_their_order_and_unknown_ones_are_not_found(client, archive):
    _, cats = archive
    first, second = cats["ondrejov"]["pubdid"][1], cats["ondrejov"]["pubdid"][2]
    other = cats["lamost"]["pubdid"][0]
    table = links(client, second, "ivo://nowhere/x", first, other)
    assert list(table["ID"][::3][:2]) == [second, "ivo://nowhere/x"]
    errors = table[table["error_message"] != ""]
    assert list(errors["ID"]) == ["ivo://nowhere/x", other]
    assert all(m.startswith("NotFoundFault: ") for m in errors["error_message"])
    assert "/datalink/lamost" in errors["error_message"][1]


def test_request_without_id_is_a_dali_error(client):
    response = client.get("/datalink/ondrejov")
    assert response.status_code == 400
    assert b'value="ERROR"' in response.content and b"BAD_PARAMETER: ID" in response.content
    assert client.get("/datalink/sdss", params={"ID": "x"}).status_code == 404


def test_this_serves_exactly_the_catalogued_file(client, archive):
    home, cats = archive
    relative = cats["lamost"]["file"][1]
    response = client.get(f"/datalink/lamost/files/{relative}")
    assert response.status_code == 200
    assert response.content == (home / "archive" / "lamost" / relative).read_bytes()
    head = client.head(f"/datalink/lamost/files/{relative}")
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(response.content)
    assert client.get("/datalink/lamost/files/catalogue.fits").status_code == 404
    assert client.get("/datalink/lamost/files/../ondrejov/catalogue.fits").status_code == 404


def test_preview_is_a_png_drawn_once(client, archive):
    home, cats = archive
    pubdid = cats["ondrejov"]["pubdid"][0]
    first = client.get("/datalink/ondrejov/preview", params={"ID": pubdid})
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert first.content.startswith(b"\x89PNG\r\n\x1a\n")
    (cached,) = (home / "cache" / "datalink-preview" / "ondrejov").glob("*.png")
    stamp = cached.stat().st_mtime_ns
    again = client.get("/datalink/ondrejov/preview", params={"ID": pubdid})
    assert again.content == first.content and cached.stat().st_mtime_ns == stamp


def test_fits_cutout_keeps_only_the_band(client, archive):
    _, cats = archive
    pubdid = cats["lamost"]["pubdid"][0]
    response = client.get("/datalink/lamost/proc", params={"ID": pubdid, "BAND": "6.5e-7 6.6e-7"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/fits"
    with fits.open(io.BytesIO(response.content)) as hdus:
        spectral = hdus["SPECTRUM"].data["spectral"]
        header = hdus["SPECTRUM"].header
    grid = 10 ** (3.5682 + 1e-4 * np.arange(3909))  # the fixture's LAMOST grid
    assert spectral.size == np.count_nonzero((grid >= 6500) & (grid <= 6600))
    assert spectral.min() >= 6500 and spectral.max() <= 6600
    assert header["AIRORVAC"] == "vac" and header["DS_IDPUB"] == pubdid


def test_votable_cutout_is_a_spectrum_dm_document(client, archive):
    _, cats = archive
    pubdid = cats["ondrejov"]["pubdid"][1]
    response = client.get(
        "/datalink/ondrejov/proc", params={"ID": pubdid, "BAND": "6.55e-7 +Inf", "FORMAT": SDM}
    )
    assert response.status_code == 200 and response.headers["content-type"] == SDM
    table = parse(io.BytesIO(response.content)).get_first_table()
    utypes = {f.name: f.utype for f in table.fields}
    assert utypes["spectral"] == "spec:Spectrum.Data.SpectralAxis.Value"
    assert table.get_field_by_id("spectral").ucd == "em.wl;obs.atmos"  # air wavelengths
    assert table.array["spectral"].min() >= 6550
    assert table.get_field_by_id("sdm_pubdid").value == pubdid


@pytest.mark.parametrize(
    ("params", "status", "starts"),
    [
        ({"BAND": "6500 6600"}, 400, "UsageError: BAD_PARAMETER: BAND"),  # Angstrom, not m
        ({"BAND": "6.5e-7"}, 400, "UsageError: BAD_PARAMETER: BAND"),
        ({"BAND": "8e-7 9e-7"}, 400, "UsageError: BAD_PARAMETER: BAND 8e-07 9e-07 m does not"),
        ({"RESPONSEFORMAT": "image/png"}, 400, "UsageError: BAD_PARAMETER: RESPONSEFORMAT"),
        ({"ID": "ivo://nowhere/x"}, 404, "NotFoundError: UNKNOWN_DATASET"),
    ],
)
def test_cutout_errors_are_soda_text(client, archive, params, status, starts):
    _, cats = archive
    response = client.get(
        "/datalink/ondrejov/proc", params={"ID": cats["ondrejov"]["pubdid"][0], **params}
    )
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith(starts)


def test_pyvo_follows_ssa_to_datalink_this_and_proc(served):
    import pyvo

    cats = served.catalogues
    with served.live() as url:
        results = pyvo.dal.SSAService(f"{url}/ssa/ondrejov").search(pos=(10.0, 60.0), diameter=0.02)
        record = results[0]
        assert record["ssa_pubDID"] == cats["ondrejov"]["pubdid"][0]
        datalink = record.getdatalink()
        this = next(datalink.bysemantics("#this", include_narrower=False))
        spectrum = read_spectrum(this.getdataset())
        assert spectrum.meta.pubdid == record["ssa_pubDID"] and spectrum.medium == "air"
        assert spectrum.wavelength.size == 2000
        proc = next(datalink.bysemantics("#proc", include_narrower=False))
        cutout = proc.processed(band=(6550 * u.AA, 6575 * u.AA)).read()
        with fits.open(io.BytesIO(cutout)) as hdus:
            spectral = hdus["SPECTRUM"].data["spectral"]
        assert spectral.min() >= 6550 and spectral.max() <= 6575
        direct = pyvo.dal.adhoc.DatalinkResults.from_result_url(
            f"{url}/datalink/ondrejov?ID={record['ssa_pubDID'].replace('?', '%3F')}"
        )
        assert [r.semantics for r in direct] == ["#this", "#preview", "#proc"]


def test_vosi_capabilities_name_datalink_and_soda(client):
    response = client.get("/datalink/ondrejov/capabilities")
    assert response.status_code == 200
    assert b'standardID="ivo://ivoa.net/std/DataLink#links-1.1"' in response.content
    assert b"/datalink/ondrejov/proc</accessURL>" in response.content
    assert client.get("/datalink/nowhere/capabilities").status_code == 404


def test_real_spectra_are_served_previewed_and_cut(real_data, tmp_path):
    lamost = sorted((real_data / "lamost-dr2").glob("*.fits"))[0]
    files = {
        "ondrejov": [
            real_data / "ondrejov" / n for n in ("gamma-cas-emission.fits", "oe270005.fits")
        ],
        "lamost": [lamost],
    }
    catalogues = catalogue_real_files(tmp_path, files)
    client = ServedArchive(tmp_path, catalogues).client
    found = client.get(
        "/ssa/ondrejov", params={"REQUEST": "queryData", "POS": "14.1772,60.7167", "SIZE": "0.01"}
    )
    (row,) = parse(io.BytesIO(found.content)).get_first_table().to_table()
    assert row["ssa_targname"] == "gamma Cas"
    this = client.get(row["accref"])
    assert this.content == files["ondrejov"][0].read_bytes()
    # gamma Cas is a Be star: its H-alpha emission peak stands far above the continuum
    cut = client.get(
        "/datalink/ondrejov/proc", params={"ID": row["ssa_pubDID"], "BAND": "6.54e-7 6.59e-7"}
    )
    with fits.open(io.BytesIO(cut.content)) as hdus:
        spectral, flux = hdus[1].data["spectral"], hdus[1].data["flux"]
    assert 6555 < spectral[np.argmax(flux)] < 6570 and flux.max() > 2 * np.median(flux)
    raw = catalogues["ondrejov"]["pubdid"][1]  # the raw 1-D image form
    png = client.get("/datalink/ondrejov/preview", params={"ID": raw})
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    pubdid = catalogues["lamost"]["pubdid"][0]
    cut = client.get("/datalink/lamost/proc", params={"ID": pubdid, "BAND": "6.5e-7 6.6e-7"})
    with fits.open(io.BytesIO(cut.content)) as hdus, fits.open(lamost) as original:
        in_band = (original[0].data[2] >= 6500) & (original[0].data[2] <= 6600)
        np.testing.assert_allclose(hdus[1].data["flux"], original[0].data[0][in_band])
        assert hdus[1].header["AIRORVAC"] == "vac"


@pytest.mark.parametrize("collection", ["ondrejov", "lamost"])
@pytest.mark.parametrize("media", ["application/fits", SDM])
def test_cutouts_read_back_with_the_project_readers(client, archive, collection, media):
    home, cats = archive
    whole = read_spectrum(home / "archive" / collection / cats[collection]["file"][0])
    response = client.get(
        f"/datalink/{collection}/proc",
        params={
            "ID": cats[collection]["pubdid"][0],
            "BAND": "6.5e-7 6.6e-7",
            "RESPONSEFORMAT": media,
        },
    )
    cut = read_spectrum(response.content)
    keep = (whole.wavelength >= 6500) & (whole.wavelength <= 6600)
    assert cut.medium == whole.medium
    np.testing.assert_allclose(cut.wavelength, whole.wavelength[keep])
    np.testing.assert_allclose(cut.flux, whole.flux[keep], rtol=1e-6)
    assert cut.resolving_power == pytest.approx(whole.resolving_power)

"""alvo's SSA + DataLink client against GAVO DaCHS, the software of the Ondrejov archive.

DaCHS (tests/peers/dachs.py) publishes the real Ondrejov spectra the way the
archive does; everything here goes through alvo's own code
(``service.spectra.access``, ``service.net.fetch.Fetcher``, ``read_spectrum``) and
is checked against the FITS headers of the files DaCHS was fed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits

from service.net.fetch import Fetcher, FetchPolicy
from service.net.uws_client import follow, submit
from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.spectra import Spectrum, read_spectrum
from service.spectra.access import (
    SpectrumReference,
    SSAQuery,
    datalink_references,
    references_from_votable,
    ssa_page,
    ssa_references,
)
from service.store.datasets import Datasets
from tests.peers.dachs import DachsService, dachs_ondrejov  # noqa: F401  (the fixture)
from tests.vo_fixture import free_port, live_server

GAMMA_CAS = "ivo://asu.cas.cz/stel/ccd700/uk220017"


@pytest.fixture(scope="module")
def headers(dachs_ondrejov: DachsService) -> dict[str, fits.Header]:  # noqa: F811
    """The BINTABLE header of each published file, by publisher DID."""
    return {pubdid: fits.getheader(path, 1) for pubdid, path in dachs_ondrejov.sources.items()}


def _in_cone(headers: dict[str, fits.Header], ra: float, dec: float, radius: float) -> set[str]:
    """Publisher DIDs whose header position lies within ``radius`` degrees."""
    ids = list(headers)
    where = SkyCoord([headers[i]["RA"] for i in ids], [headers[i]["DEC"] for i in ids], unit="deg")
    inside = where.separation(SkyCoord(ra, dec, unit="deg")).deg <= radius
    return {pubdid for pubdid, hit in zip(ids, inside, strict=True) if hit}


def test_ssa_cone_around_gamma_cas_finds_it_with_its_header_metadata(
    dachs_ondrejov: DachsService,  # noqa: F811
    headers: dict[str, fits.Header],
) -> None:
    header = headers[GAMMA_CAS]
    refs = ssa_references(
        dachs_ondrejov.ssa_url, SSAQuery(pos=(header["RA"], header["DEC"]), size=0.05)
    )
    assert [ref.pubdid for ref in refs] == [GAMMA_CAS]
    (ref,) = refs
    assert header["OBJECT"] in ref.title
    assert (ref.ra, ref.dec) == pytest.approx((header["RA"], header["DEC"]), abs=1e-9)
    assert ref.format == "application/x-votable+xml"
    assert ref.access_url.startswith("http://127.0.0.1:8080/")
    assert ref.datalink.startswith(dachs_ondrejov.datalink_url + "?ID=")


def test_dachs_takes_ssa_size_as_a_radius_not_the_standard_diameter(
    dachs_ondrejov: DachsService,  # noqa: F811
    headers: dict[str, fits.Header],
) -> None:
    """SSA 1.1 defines SIZE as the diameter; DaCHS 2.7 (pql#coneParameter) uses it as radius.

    alvo passes SIZE on as the standard says, so against DaCHS a cone returns
    the stars within SIZE degrees: more than asked for, never fewer.
    """
    ra, dec, size = 75.4, 43.5, 1.0  # three CCD700 targets in Auriga, 0.3-0.8 deg away
    within_radius = _in_cone(headers, ra, dec, size)
    within_diameter = _in_cone(headers, ra, dec, size / 2)
    assert within_diameter < within_radius, "the cone should tell the two readings apart"
    refs = ssa_references(dachs_ondrejov.ssa_url, SSAQuery(pos=(ra, dec), size=size))
    assert {ref.pubdid for ref in refs} == within_radius
    for ref in refs:
        assert (ref.ra, ref.dec) == pytest.approx(
            (headers[ref.pubdid]["RA"], headers[ref.pubdid]["DEC"]), abs=1e-9
        )


@pytest.mark.parametrize(
    ("band", "covered"),
    [((6.55e-7, 6.58e-7), True), ((4.0e-7, 5.0e-7), False), ((6.72e-7, 7.0e-7), True)],
)
def test_ssa_band_in_metres_selects_by_spectral_coverage(
    dachs_ondrejov: DachsService,  # noqa: F811
    headers: dict[str, fits.Header],
    band: tuple[float, float],
    covered: bool,
) -> None:
    expected = {
        pubdid
        for pubdid, header in headers.items()
        if header["TDMIN1"] <= band[1] and header["TDMAX1"] >= band[0]  # [m]
    }
    assert bool(expected) is covered
    refs = ssa_references(dachs_ondrejov.ssa_url, SSAQuery(band=band))
    assert {ref.pubdid for ref in refs} == expected


def test_ssa_maxrec_limits_the_records(
    dachs_ondrejov: DachsService,  # noqa: F811
    headers: dict[str, fits.Header],
) -> None:
    refs, overflow = ssa_page(dachs_ondrejov.ssa_url, SSAQuery(maxrec=3))
    assert overflow  # DaCHS says QUERY_STATUS OVERFLOW, which ssa_listing pages past
    assert len(refs) == 3 < len(headers)
    assert {ref.pubdid for ref in refs} <= set(headers)


def test_datalink_resolves_every_id_to_its_this_link_and_names_an_unknown_one(
    dachs_ondrejov: DachsService,  # noqa: F811
    headers: dict[str, fits.Header],
) -> None:
    unknown = "ivo://asu.cas.cz/stel/ccd700/no-such-spectrum"
    ids = [*sorted(headers)[:5], unknown, *sorted(headers)[5:]]
    resolved = datalink_references(dachs_ondrejov.datalink_url, ids, batch=4)
    assert len(resolved) == len(ids)
    for pubdid, result in zip(ids, resolved, strict=True):
        if pubdid == unknown:
            assert isinstance(result, AlvoError)
            assert result.reason is Reason.UNKNOWN_DATASET
            assert "NotFoundFault" in result.detail
        else:
            assert isinstance(result, SpectrumReference), result
            assert result.pubdid == pubdid
            assert result.format == "application/x-votable+xml"
            assert result.access_url.startswith("http://127.0.0.1:8080/")


def test_fetched_spectra_read_back_as_the_files_dachs_was_given(
    dachs_ondrejov: DachsService,  # noqa: F811
    headers: dict[str, fits.Header],
    tmp_path: Path,
) -> None:
    """SSA -> access URLs -> Fetcher -> read_spectrum on DaCHS's SDM VOTables."""
    refs = ssa_references(dachs_ondrejov.ssa_url, SSAQuery(band=(6.5e-7, 6.6e-7)))
    assert {ref.pubdid for ref in refs} == set(headers)
    fetched = Fetcher(tmp_path).fetch_all([ref.access_url for ref in refs])
    for ref, got in zip(refs, fetched, strict=True):
        assert got.ok, got.error
        spectrum = read_spectrum(got.path)
        _assert_matches_source(spectrum, ref.pubdid, headers, dachs_ondrejov.sources)


def test_dachs_sdm_fits_format_reads_the_same(
    dachs_ondrejov: DachsService,  # noqa: F811
    headers: dict[str, fits.Header],
    tmp_path: Path,
) -> None:
    """DataLink's FORMAT=application/fits: DaCHS's SDM FITS, the form of the real files."""
    url = f"{dachs_ondrejov.dlget_url}?ID={quote(GAMMA_CAS, safe='')}&FORMAT=application/fits"
    (got,) = Fetcher(tmp_path).fetch_all([url])
    assert got.ok, got.error
    assert got.path is not None and got.path.read_bytes()[:6] == b"SIMPLE"
    _assert_matches_source(read_spectrum(got.path), GAMMA_CAS, headers, dachs_ondrejov.sources)


def _assert_matches_source(
    spectrum: Spectrum, pubdid: str, headers: dict[str, fits.Header], sources: dict[str, Path]
) -> None:
    header = headers[pubdid]
    table = fits.getdata(sources[pubdid], 1)
    np.testing.assert_allclose(spectrum.wavelength, table["spectral"], rtol=1e-12)
    np.testing.assert_allclose(spectrum.flux, table["flux"], rtol=1e-6)
    assert spectrum.medium == "air"  # DaCHS says so by the UCD em.wl;obs.atmos
    assert spectrum.wavelength[0] * 1e-10 == pytest.approx(header["TDMIN1"], rel=1e-9)
    assert spectrum.wavelength[-1] * 1e-10 == pytest.approx(header["TDMAX1"], rel=1e-9)
    assert spectrum.meta.pubdid == pubdid
    assert spectrum.meta.object == header["OBJECT"]
    assert (spectrum.meta.ra, spectrum.meta.dec) == pytest.approx(
        (header["RA"], header["DEC"]), abs=1e-9
    )
    assert spectrum.meta.mjd == pytest.approx(header["TMID"], abs=1e-6)
    assert 10_000 < spectrum.resolving_power < 16_000  # CCD700, R ~ 13 000


def test_saved_dachs_ssa_table_as_an_upload_gives_the_same_references(
    dachs_ondrejov: DachsService,  # noqa: F811
) -> None:
    """A user uploads an SSA result saved from TOPCAT: references_from_votable reads it."""
    query = SSAQuery(pos=(75.4, 43.5), size=1.0)
    saved = httpx.get(dachs_ondrejov.ssa_url, params=query.parameters(), timeout=30).content
    direct, to_resolve = references_from_votable(saved)
    assert to_resolve == []
    from_ssa = ssa_references(dachs_ondrejov.ssa_url, query)
    assert {(r.pubdid, r.access_url) for r in direct} == {
        (r.pubdid, r.access_url) for r in from_ssa
    }


def test_ssa_bad_request_is_a_named_error_with_dachs_message(
    dachs_ondrejov: DachsService,  # noqa: F811
) -> None:
    with pytest.raises(AlvoError) as caught:
        ssa_references(dachs_ondrejov.ssa_url, SSAQuery(pos=(10.0, 10.0), size=-1.0))
    assert caught.value.reason is Reason.SSA_ERROR
    assert "radius" in caught.value.detail  # DaCHS's own words, passed on


def test_ssa_timeout_is_named(dachs_ondrejov: DachsService) -> None:  # noqa: F811
    """A limit far below what the query takes here ends as SSA_TIMEOUT, not a traceback."""
    query, limit_s = SSAQuery(band=(6.5e-7, 6.6e-7)), 0.001
    began = time.perf_counter()
    ssa_references(dachs_ondrejov.ssa_url, query)
    assert time.perf_counter() - began > 20 * limit_s, "DaCHS answered too fast to time out"
    with pytest.raises(AlvoError) as caught:
        ssa_references(dachs_ondrejov.ssa_url, query, FetchPolicy(deadline_s=limit_s))
    assert caught.value.reason is Reason.SSA_TIMEOUT


def test_fetching_an_unknown_dataset_is_a_named_error(
    dachs_ondrejov: DachsService,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = f"{dachs_ondrejov.dlget_url}?ID={quote('ivo://asu.cas.cz/stel/ccd700/nope', safe='')}"
    (got,) = Fetcher(tmp_path).fetch_all([url])
    assert not got.ok and got.error is not None
    assert got.error.reason is Reason.HTTP_ERROR
    assert "404" in got.error.detail


# --- the ingest job (UWS) against DaCHS: the same code path as for alvo's own archive ---


@pytest.fixture(scope="module")
def alvo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    """A live alvo service with an empty archive of its own."""
    from service.app import create_app

    home = tmp_path_factory.mktemp("alvo-dachs-home")
    port = free_port()
    settings = Settings(home=home, port=port, demo_archive_size=0)
    with live_server(create_app(settings), port, lifespan="on") as url:
        yield url, settings


def test_ingest_job_from_dachs_ssa_and_datalink(
    dachs_ondrejov: DachsService,  # noqa: F811
    headers: dict[str, fits.Header],
    alvo: tuple[str, Settings],
) -> None:
    base, settings = alvo
    status = follow(
        submit(
            f"{base}/ingest",
            [("DATASET", "ccd700"), ("SSA", dachs_ondrejov.ssa_url), ("BAND", "6.5e-7/6.6e-7")],
        ),
        lambda _: None,
    )
    assert status.phase == "COMPLETED", status.error
    summary = httpx.get(status.results["summary"][0]).json()
    assert (summary["added"], summary["failed"]) == (len(headers), 0)
    assert summary["domain"] == "source"  # R ~ 13 000 read from DaCHS's SDM VOTables
    datasets = Datasets(settings)
    rows = datasets.spectra(datasets.require("ccd700"), ["pubdid", "ra"])
    assert set(rows["pubdid"]) == set(headers)
    by_id = dict(zip(rows["pubdid"], rows["ra"], strict=True))
    assert all(by_id[i] == pytest.approx(h["RA"], abs=1e-9) for i, h in headers.items())

    unknown = "ivo://asu.cas.cz/stel/ccd700/no-such-spectrum"
    status = follow(
        submit(
            f"{base}/ingest",
            [
                ("DATASET", "by-id"),
                ("DATALINK", dachs_ondrejov.datalink_url),
                ("ID", GAMMA_CAS),
                ("ID", unknown),
            ],
        ),
        lambda _: None,
    )
    assert status.phase == "COMPLETED", status.error
    summary = httpx.get(status.results["summary"][0]).json()
    assert (summary["added"], summary["failed"]) == (1, 1)
    assert summary["reasons"] == {"UNKNOWN_DATASET": 1}

"""Every real LAMOST and Ondrejov file reads, with values checked against its own header.

The expected values are read here with astropy directly from the FITS keywords
(not from our reader), so a reader that mixes up rows, media or keywords fails.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from service.reasons import Reason, SpectrumError
from service.spectra import check_halpha_coverage, read_spectrum

pytestmark = pytest.mark.filterwarnings("error")  # no astropy warning may escape a reader


def _separation_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    d_ra = (ra1 - ra2) * math.cos(math.radians((dec1 + dec2) / 2))
    return math.hypot(d_ra, dec1 - dec2) * 3600


def test_lamost_files_match_their_headers(real_data: Path) -> None:
    files = sorted((real_data / "lamost-dr1").glob("*.fits")) + sorted(
        (real_data / "lamost-dr2").glob("*.fits")
    )
    assert len(files) == 28
    for path in files:
        header = fits.getheader(path)
        rows = fits.getdata(path).astype(np.float64)
        spectrum = read_spectrum(path)
        meta = spectrum.meta
        assert spectrum.medium == "vacuum" and spectrum.resolving_power == 1800
        assert 3690 < spectrum.wavelength[0] < 3710 and 9050 < spectrum.wavelength[-1] < 9110
        expected = 10 ** (header["COEFF0"] + header["COEFF1"] * np.arange(rows.shape[1]))
        np.testing.assert_allclose(spectrum.wavelength, expected, rtol=1e-12)
        np.testing.assert_array_equal(spectrum.flux, rows[0])
        np.testing.assert_array_equal(spectrum.ivar, rows[1])
        assert meta.designation == header["DESIG"].strip() and meta.designation.startswith(
            "LAMOST J"
        )
        assert meta.ra == header["RA"] and meta.dec == header["DEC"]
        assert meta.snr == header["SN_R"] or (header["SN_R"] == 99 and math.isnan(meta.snr))
        assert meta.pipeline_class.split()[0] == header["CLASS"].strip()
        assert meta.obsid == str(header.get("OBSID") or "")  # never the file name
        assert meta.pubdid.endswith("?" + header["FILENAME"].removesuffix(".fits"))
        assert meta.collection == "lamost" and meta.extra["layout"] == path.parent.name[-3:].upper()
        # DATE-OBS is the median UTC of the exposures: within the local night LMJD.
        assert header["LMJD"] - 1 < meta.mjd < header["LMJD"] + 1
        assert spectrum.mask[rows[3] != 0].all()
        check_halpha_coverage(spectrum)


def test_lamost_dr1_row_two_is_not_taken_for_wavelength(real_data: Path) -> None:
    spectrum = read_spectrum(real_data / "lamost-dr1" / "bt-cmi-lamost.fits")
    row2 = fits.getdata(real_data / "lamost-dr1" / "bt-cmi-lamost.fits")[2]
    assert not np.allclose(spectrum.wavelength, row2)
    assert spectrum.meta.extra["layout"] == "DR1"


def test_emission_core_with_zero_ivar_stays_usable(real_data: Path) -> None:
    """LAMOST zeroes ivar across BT CMi's H-alpha emission; masking it would erase the line."""
    spectrum = read_spectrum(real_data / "lamost-dr1" / "bt-cmi-lamost.fits")
    core = np.abs(spectrum.wavelength - 6564.6) < 8
    assert (spectrum.ivar[core] == 0).any()
    assert spectrum.good[core].all()
    continuum = np.median(
        spectrum.flux[(spectrum.wavelength > 6500) & (spectrum.wavelength < 6540)]
    )
    assert spectrum.flux[core].max() > 2 * continuum


def test_ondrejov_datalink_tables_match_their_headers(real_data: Path) -> None:
    files = [
        p for p in sorted((real_data / "ondrejov").glob("*.fits")) if p.name != "oe270005.fits"
    ]
    assert len(files) == 14
    for path in files:
        header = fits.getheader(path, 1)
        table = fits.getdata(path, 1)
        spectrum = read_spectrum(path)
        meta = spectrum.meta
        assert spectrum.medium == "air" and spectrum.resolving_power == 13000
        np.testing.assert_array_equal(spectrum.wavelength, table["spectral"])
        np.testing.assert_array_equal(spectrum.flux, table["flux"])
        assert 6250 < spectrum.wavelength[0] < 6290 and 6730 < spectrum.wavelength[-1] < 6780
        assert meta.pubdid == header["DS_IDPUB"] and meta.pubdid.startswith("ivo://asu.cas.cz/")
        assert meta.obsid == header["DS_IDPUB"].rsplit("/", 1)[1]
        assert meta.object == header["OBJECT"].strip()
        assert meta.ra == header["RA"] and meta.dec == header["DEC"]
        assert meta.mjd == header["TMID"]
        assert meta.collection == "ondrejov" and meta.instrument == "CCD700"
        assert 5 < meta.snr < 1000  # DER_SNR estimate; the archive gives none
        check_halpha_coverage(spectrum)


def test_ondrejov_raw_image(real_data: Path) -> None:
    path = real_data / "ondrejov" / "oe270005.fits"
    header = fits.getheader(path)
    spectrum = read_spectrum(path)
    meta = spectrum.meta
    assert spectrum.medium == "air" and spectrum.resolving_power == 13000
    assert spectrum.wavelength[0] == header["CRVAL1"]
    np.testing.assert_allclose(np.diff(spectrum.wavelength), header["CDELT1"])
    assert spectrum.wavelength.shape == (header["NAXIS1"],)
    assert meta.object == "HD 208905" and meta.obsid == "oe270005"
    # RA '21:57:18.2' DEC '61:17:39.7' of equinox 2005.4, precessed back to J2000/ICRS:
    # annual precession m + n sin(ra) tan(dec) in RA, n cos(ra) in Dec (m = 3.075 s, n = 20.04").
    ra, dec = 15 * (21 + 57 / 60 + 18.2 / 3600), 61 + 17 / 60 + 39.7 / 3600
    years = header["EQUINOX"] - 2000.0
    rate_ra = 3.075 * 15 + 20.04 * math.sin(math.radians(ra)) * math.tan(math.radians(dec))
    rate_dec = 20.04 * math.cos(math.radians(ra))
    assert (ra - meta.ra) * 3600 == pytest.approx(rate_ra * years, abs=3.0)
    assert (dec - meta.dec) * 3600 == pytest.approx(rate_dec * years, abs=3.0)
    assert meta.mjd == pytest.approx(header["JD"] - 2400000.5, abs=1 / 86400)
    assert math.isfinite(meta.snr)


def test_twins_are_the_same_star(real_data: Path) -> None:
    """Cross-archive pairs: the positions agree to the archives' precision (<= 20")."""
    bt_ondrejov = read_spectrum(real_data / "ondrejov" / "bt-cmi-ondrejov.fits").meta
    bt_lamost = read_spectrum(real_data / "lamost-dr1" / "bt-cmi-lamost.fits").meta
    bt = _separation_arcsec(bt_ondrejov.ra, bt_ondrejov.dec, bt_lamost.ra, bt_lamost.dec)
    assert bt < 12.0  # 9.8": the Ondrejov header position is the archive's, not Gaia's
    with open(real_data / "pairs.csv") as handle:
        for row in csv.DictReader(handle):
            a = read_spectrum(real_data / row["ondrejov_file"]).meta
            b = read_spectrum(real_data / row["lamost_file"]).meta
            assert _separation_arcsec(a.ra, a.dec, b.ra, b.dec) < 21.0, row


def test_bytes_and_file_objects_read_like_paths(real_data: Path) -> None:
    path = real_data / "ondrejov" / "gamma-cas-emission.fits"
    by_path = read_spectrum(path)
    by_str = read_spectrum(str(path))
    by_bytes = read_spectrum(path.read_bytes())
    with open(path, "rb") as handle:
        by_file = read_spectrum(handle)
    for other in (by_str, by_bytes, by_file, read_spectrum(io.BytesIO(path.read_bytes()))):
        np.testing.assert_array_equal(other.flux, by_path.flux)
        assert other.meta.pubdid == by_path.meta.pubdid


def test_gzip_compressed_fits_reads(real_data: Path) -> None:
    import gzip

    path = real_data / "lamost-dr2" / "spec-55916-B5591606_sp01-001.fits"
    spectrum = read_spectrum(gzip.compress(path.read_bytes()))
    np.testing.assert_array_equal(spectrum.flux, read_spectrum(path).flux)


def test_missing_file_or_folder_has_a_reason(tmp_path: Path) -> None:
    for source in (tmp_path / "nope.fits", tmp_path):
        with pytest.raises(SpectrumError) as caught:
            read_spectrum(source)
        assert caught.value.reason is Reason.UNREADABLE_FILE


@pytest.mark.parametrize(
    ("ut", "utmiddle", "mjd"),
    [
        ("22:00:02", "22:30:02.0", 53517.937523),  # oe270005's own times
        ("23:45:00", "00:15:00.0", 53518.010417),  # started before 0h UT, middle after it
    ],
)
def test_raw_ccd700_mid_exposure_date(ut: str, utmiddle: str, mjd: float) -> None:
    """DATE-OBS is the start date: a UTMIDDLE after 0h UT belongs to the next day."""
    from service.spectra.ondrejov import raw_mjd

    header = {"DATE-OBS": "2005-05-27", "UT": ut, "UTMIDDLE": utmiddle, "EXPTIME": 3600.0}
    assert raw_mjd(header) == pytest.approx(mjd, abs=1e-6)


def test_lamost_dr1_identifiers_and_snr_fill(real_data: Path) -> None:
    """Issue 15: DR1 (no OBSID) got an empty pubdid, obsid = file name, and S/N 99 (a fill)."""
    from service.spectra.lamost import meta

    renamed = meta(fits.getheader(real_data / "lamost-dr1" / "bt-cmi-lamost.fits"))
    assert renamed.pubdid == "ivo://lamost.org/spectrum?spec-56342-GAC121N02V2_sp14-101"
    assert renamed.obsid == ""  # unknown, not the file's name
    filled = meta(fits.getheader(real_data / "lamost-dr1" / "spec-55903-B90306_sp06-163.fits"))
    assert (
        fits.getheader(real_data / "lamost-dr1" / "spec-55903-B90306_sp06-163.fits")["SN_R"] == 99
    )
    assert np.isnan(filled.snr) and np.isnan(filled.extra["sn_r"]) and filled.extra["sn_u"] > 0


def test_lamost_obsid_makes_the_pubdid_when_present() -> None:
    from service.spectra.lamost import meta

    header = fits.Header({"OBSID": 101, "LMJD": 55903, "PLANID": "B90306", "SPID": 6,
                          "FIBERID": 163, "SN_R": 12.5})  # fmt: skip
    described = meta(header)
    assert described.pubdid == "ivo://lamost.org/spectrum?101" and described.obsid == "101"
    assert described.snr == 12.5

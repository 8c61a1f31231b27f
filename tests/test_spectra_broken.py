"""Broken inputs, made here from the real files: each gives its named reason, no traceback."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from service.reasons import Reason, SpectrumError
from service.spectra import check_halpha_coverage, read_spectrum

pytestmark = pytest.mark.filterwarnings("error")

LAMOST_DR1 = "lamost-dr1/bt-cmi-lamost.fits"
LAMOST_DR2 = "lamost-dr2/spec-55916-B5591606_sp01-001.fits"
RAW = "ondrejov/oe270005.fits"
TABLE = "ondrejov/bt-cmi-ondrejov.fits"


def _edited(path: Path, edit: Callable[[fits.HDUList], None]) -> bytes:
    """The file after ``edit`` changed its HDUs in memory, as FITS bytes."""
    with fits.open(path) as hdus:
        hdus = fits.HDUList([hdu.copy() for hdu in hdus])
    edit(hdus)
    out = io.BytesIO()
    hdus.writeto(out, output_verify="silentfix")
    return out.getvalue()


def _reason(source: object) -> Reason:
    with pytest.raises(SpectrumError) as caught:
        read_spectrum(source)  # type: ignore[arg-type]
    assert str(caught.value).startswith(caught.value.reason.name)
    return caught.value.reason


@pytest.mark.parametrize("name", [LAMOST_DR1, LAMOST_DR2, RAW, TABLE])
def test_truncated_files(real_data: Path, name: str) -> None:
    data = (real_data / name).read_bytes()
    assert _reason(data[: len(data) // 2]) is Reason.CORRUPT_FITS  # data cut
    assert _reason(data[:1000]) is Reason.CORRUPT_FITS  # header cut


def test_not_fits_at_all() -> None:
    rng = np.random.default_rng(1)
    assert _reason(rng.bytes(20000)) is Reason.CORRUPT_FITS
    assert _reason(b"") is Reason.CORRUPT_FITS
    assert _reason(b"SIMPLE  =" + rng.bytes(5000)) is Reason.CORRUPT_FITS
    assert _reason(b"\x1f\x8b" + rng.bytes(100)) is Reason.CORRUPT_FITS  # broken gzip


def test_wrong_hdu_shapes(real_data: Path) -> None:
    def four_rows(hdus: fits.HDUList) -> None:
        hdus[0].data = hdus[0].data[:4]

    def no_flux_column(hdus: fits.HDUList) -> None:
        hdus[1] = fits.BinTableHDU.from_columns(
            [hdus[1].columns["spectral"]], header=hdus[1].header
        )

    def two_d_raw(hdus: fits.HDUList) -> None:
        hdus[0].data = np.vstack([hdus[0].data, hdus[0].data])

    assert _reason(_edited(real_data / LAMOST_DR2, four_rows)) is Reason.WRONG_HDU_LAYOUT
    assert _reason(_edited(real_data / TABLE, no_flux_column)) is Reason.WRONG_HDU_LAYOUT
    assert _reason(_edited(real_data / RAW, two_d_raw)) is Reason.UNKNOWN_FORMAT
    cube = io.BytesIO()
    fits.PrimaryHDU(np.ones((3, 3, 3))).writeto(cube)
    assert _reason(cube.getvalue()) is Reason.UNKNOWN_FORMAT
    assert _reason(fits.HDUList()) is Reason.UNREADABLE_FILE  # not a file at all


def test_unknown_layout() -> None:
    image = io.BytesIO()
    fits.PrimaryHDU(np.ones((10, 10))).writeto(image)
    assert _reason(image.getvalue()) is Reason.UNKNOWN_FORMAT


@pytest.mark.parametrize("value", [np.nan, 0.0])
@pytest.mark.parametrize("name", [LAMOST_DR1, LAMOST_DR2, RAW, TABLE])
def test_nan_or_zero_flux(real_data: Path, name: str, value: float) -> None:
    def blank(hdus: fits.HDUList) -> None:
        if hdus[0].data is not None and hdus[0].data.ndim == 2:
            hdus[0].data[0] = value
        elif hdus[0].data is not None:
            hdus[0].data[:] = value
        else:
            hdus[1].data["flux"] = value

    assert _reason(_edited(real_data / name, blank)) is Reason.BAD_FLUX


@pytest.mark.parametrize(("name", "keyword"), [(LAMOST_DR1, "COEFF0"), (RAW, "CRVAL1")])
def test_missing_wavelength_keywords(real_data: Path, name: str, keyword: str) -> None:
    def drop(hdus: fits.HDUList) -> None:
        del hdus[0].header[keyword]

    assert _reason(_edited(real_data / name, drop)) is Reason.MISSING_KEYWORD


def test_non_monotonic_wavelength(real_data: Path) -> None:
    def swap(hdus: fits.HDUList) -> None:
        column = hdus[1].data["spectral"]
        column[100], column[101] = column[101], column[100]

    assert _reason(_edited(real_data / TABLE, swap)) is Reason.BAD_WAVELENGTH


def test_decreasing_wavelength_is_reversed(real_data: Path) -> None:
    def flip(hdus: fits.HDUList) -> None:
        hdus[1].data = hdus[1].data[::-1].copy()

    spectrum = read_spectrum(_edited(real_data / TABLE, flip))
    assert (np.diff(spectrum.wavelength) > 0).all()
    np.testing.assert_array_equal(spectrum.flux, read_spectrum(real_data / TABLE).flux)


@pytest.mark.parametrize("name", [LAMOST_DR2, TABLE])
def test_spectrum_without_halpha_reads_but_is_refused_by_the_coverage_check(
    real_data: Path, name: str
) -> None:
    """Cut to 6000-6400 Å: a valid spectrum, but not one the classifier can use."""

    def cut(hdus: fits.HDUList) -> None:
        if len(hdus) > 1:
            lam = hdus[1].data["spectral"]
            hdus[1].data = hdus[1].data[(lam > 6000) & (lam < 6400)]
        else:
            lam = hdus[0].data[2]
            keep = (lam > 6000) & (lam < 6400)
            hdus[0].data = np.ascontiguousarray(hdus[0].data[:, keep])
            hdus[0].header["COEFF0"] = np.log10(lam[keep][0])

    spectrum = read_spectrum(_edited(real_data / name, cut))
    assert spectrum.wavelength[0] > 6000 and spectrum.wavelength[-1] < 6400
    with pytest.raises(SpectrumError) as caught:
        check_halpha_coverage(spectrum)
    assert caught.value.reason is Reason.NO_HALPHA_COVERAGE
    assert check_halpha_coverage(read_spectrum(real_data / name)) is not None


def test_masked_edges_count_against_coverage(real_data: Path) -> None:
    spectrum = read_spectrum(real_data / LAMOST_DR2)
    assert spectrum.mask is not None
    spectrum.mask[spectrum.wavelength > 6700] = True
    with pytest.raises(SpectrumError) as caught:
        check_halpha_coverage(spectrum)
    assert caught.value.reason is Reason.NO_HALPHA_COVERAGE


def test_bad_header_values_do_not_leak_warnings(real_data: Path) -> None:
    """Unparsable cards read as absent; astropy's padding warning stays inside the reader."""
    data = bytearray((real_data / RAW).read_bytes())
    at = data.index(b"OBJECT  =")
    data[at : at + 80] = b"OBJECT  = 'unterminated string value with no closing quote".ljust(80)
    end = data.index(b"END" + b" " * 77)
    data[end + 80 : (end // 2880 + 1) * 2880] = bytes((end // 2880 + 1) * 2880 - end - 80)
    with pytest.warns(Warning):  # astropy alone does warn about this file
        fits.getdata(io.BytesIO(bytes(data)))
    spectrum = read_spectrum(bytes(data))
    assert spectrum.meta.object == "" and spectrum.meta.obsid == "oe270005"


def test_mutated_files_give_reasons_never_tracebacks(real_data: Path, tmp_path: Path) -> None:
    """Random byte changes, mostly in the headers, and random cuts: only SpectrumErrors."""
    from service.spectra import read_halpha_windows

    rng = np.random.default_rng(7)
    blobs = [p.read_bytes() for p in sorted(real_data.glob("*/*.fits"))]
    reasons = set()
    for k in range(300):
        data = bytearray(blobs[k % len(blobs)])
        for _ in range(int(rng.integers(1, 6))):
            at = int(rng.integers(0, min(len(data), 4 * 2880)))
            data[at] = int(rng.integers(32, 127))
        if rng.random() < 0.1:
            data = data[: int(rng.integers(0, len(data)))]
        try:
            read_spectrum(bytes(data))
        except SpectrumError as error:
            reasons.add(error.reason)
        path = tmp_path / f"{k}.fits"
        path.write_bytes(bytes(data))
        read_halpha_windows([path])  # failures are collected, never raised
    assert Reason.CORRUPT_FITS in reasons and len(reasons) >= 3

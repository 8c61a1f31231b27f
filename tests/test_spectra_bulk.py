"""The bulk H-alpha reader gives read_spectrum's values, and a named reason per bad file."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from service.reasons import Reason
from service.spectra import read_halpha_windows, read_spectrum
from service.spectra.bulk import BULK_WINDOW

pytestmark = pytest.mark.filterwarnings("error")


def _real_files(real_data: Path) -> list[Path]:
    return sorted(real_data.glob("lamost-dr*/*.fits")) + sorted(real_data.glob("ondrejov/*.fits"))


def test_bulk_windows_equal_read_spectrum(real_data: Path) -> None:
    files = _real_files(real_data)
    windows = read_halpha_windows(files)
    assert windows.failures == {} and windows.n_read == len(files) == windows.n_files
    seen = set()
    for group in windows.groups:
        for row, i in enumerate(group.index):
            seen.add(int(i))
            full = read_spectrum(files[i])
            assert full.mask is not None and full.ivar is not None
            at = np.searchsorted(full.wavelength, group.wavelength)
            np.testing.assert_array_equal(full.wavelength[at], group.wavelength)
            np.testing.assert_array_equal(full.flux[at], group.flux[row])
            np.testing.assert_array_equal(full.ivar[at], group.ivar[row])
            np.testing.assert_array_equal(full.mask[at], group.mask[row])
            assert group.medium == full.medium
            assert group.resolving_power[row] == full.resolving_power
            # The window read is the one asked for, in the file's medium, and no wider.
            lo, hi = BULK_WINDOW if full.medium == "vacuum" else np.divide(BULK_WINDOW, 1.000276)
            assert group.wavelength[0] <= lo or at[0] == 0
            assert group.wavelength[-1] >= hi or at[-1] == full.wavelength.shape[0] - 1
            assert group.wavelength[1] > lo and group.wavelength[-2] < hi
    assert seen == set(range(len(files)))


def test_lamost_files_on_one_grid_are_stacked(real_data: Path) -> None:
    files = sorted((real_data / "lamost-dr1").glob("*.fits"))
    windows = read_halpha_windows(files)
    assert len(windows.groups) == 1
    assert windows.groups[0].flux.shape == (len(files), windows.groups[0].wavelength.shape[0])


def test_bad_files_fail_with_reasons_and_the_rest_still_read(
    real_data: Path, tmp_path: Path
) -> None:
    good = real_data / "lamost-dr2" / "spec-55916-B5591606_sp01-001.fits"
    data = good.read_bytes()
    (tmp_path / "truncated.fits").write_bytes(data[: len(data) // 2])
    (tmp_path / "random.fits").write_bytes(np.random.default_rng(2).bytes(9000))
    with fits.open(good) as hdus:
        rows = hdus[0].data.copy()
        header = hdus[0].header.copy()
    rows[0] = np.nan
    fits.PrimaryHDU(rows, header).writeto(tmp_path / "nan.fits")
    lam = rows[2]
    keep = (lam > 6000) & (lam < 6400)
    header["COEFF0"] = np.log10(lam[keep][0])
    fits.PrimaryHDU(np.ascontiguousarray(rows[:, keep]), header).writeto(tmp_path / "cut.fits")
    (tmp_path / "folder.fits").mkdir()
    (tmp_path / "good.fits.gz").write_bytes(gzip.compress(data))
    shutil.copy(good, tmp_path / "good.fits")
    names = ["truncated", "random", "nan", "cut", "missing", "folder", "good.fits.gz", "good.fits"]
    paths = [tmp_path / (n if n.startswith("good") else f"{n}.fits") for n in names]
    windows = read_halpha_windows(paths)
    reasons = {names[i]: error.reason for i, error in windows.failures.items()}
    assert reasons == {
        "truncated": Reason.CORRUPT_FITS,
        "random": Reason.CORRUPT_FITS,
        "nan": Reason.BAD_FLUX,
        "cut": Reason.NO_HALPHA_COVERAGE,
        "missing": Reason.UNREADABLE_FILE,
        "folder": Reason.UNREADABLE_FILE,
    }
    (group,) = windows.groups  # the gzip copy goes the slow way to the same grid
    assert sorted(group.index) == [6, 7]
    np.testing.assert_array_equal(group.flux[0], group.flux[1])


def test_bulk_windows_adapt_like_read_spectrum(real_data: Path) -> None:
    """Fed to adapt_array, the windows give the features adapt() gives the whole spectra."""
    from service.adapt import AdaptConfig, adapt, adapt_array

    lamost = sorted((real_data / "lamost-dr1").glob("*.fits"))[:5]
    files = [*lamost, real_data / "ondrejov" / "bt-cmi-ondrejov.fits"]
    windows = read_halpha_windows(files)
    reference = adapt([read_spectrum(f) for f in files], AdaptConfig()).features
    for group in windows.groups:
        batch = adapt_array(
            group.wavelength, group.flux, group.mask, group.medium, group.resolving_power
        )
        np.testing.assert_allclose(batch.features, reference[group.index], atol=1e-4)

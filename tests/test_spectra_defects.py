"""Dead (flat) runs and cosmic-ray spikes in the H-alpha window, found at ingest.

On real LAMOST and Ondrejov spectra (../shared/data/real) with planted defects: a
30 Å dead stretch across H-alpha is refused as DEAD_PIXELS (it passed ingest and was
called double-peak with p = 1.00), a spike and a short dead run are masked, kept and
flagged in ``spectrum.quality_flag`` (published over TAP with its UCD), and no real
spectrum as the archives give it is flagged.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from service.adapt import AdaptConfig, adapt
from service.jobs.ingest.served import screen_spectrum
from service.reasons import Reason, SpectrumError
from service.spectra import read_spectrum
from service.spectra.checks import window_in_medium
from service.spectra.defects import COSMIC_RAY, DEAD_RUN, find_defects, screen
from service.vocabulary import FEATURE_WINDOW

HALPHA = 6564.61


def _window(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    spectrum = read_spectrum(path)
    lo, hi = window_in_medium(FEATURE_WINDOW, spectrum.medium)
    cut = (spectrum.wavelength >= lo) & (spectrum.wavelength <= hi)
    assert spectrum.mask is not None
    return spectrum.wavelength[cut], spectrum.flux[cut], spectrum.mask[cut], spectrum.medium


def _real_files(real_data: Path) -> list[Path]:
    return sorted((real_data / "lamost-dr1").glob("*.fits")) + sorted(
        (real_data / "lamost-dr2").glob("*.fits")
    ) + sorted((real_data / "ondrejov").glob("*.fits"))  # fmt: skip


def test_no_real_spectrum_is_flagged(real_data):
    """The false-positive rate on every real spectrum there: 0 of 43 (docs/readers.md)."""
    files = _real_files(real_data)
    assert len(files) >= 40
    flagged = []
    for path in files:
        wavelength, flux, mask, medium = _window(path)
        found = screen(wavelength, flux[None], mask[None], medium, AdaptConfig().max_gap_angstrom)  # type: ignore[arg-type]
        if found.flags[0] or found.refused:
            flagged.append((path.name, found.flags[0], list(found.refused.values())))
    assert flagged == []


def _planted_lamost(source: Path, target: Path, plant) -> Path:  # type: ignore[no-untyped-def]
    """A copy of a LAMOST DR2 file with its flux row changed by ``plant(wavelength, flux)``."""
    with fits.open(source) as hdus:
        data = np.array(hdus[0].data, dtype=np.float64)
        header = hdus[0].header.copy()
    plant(data[2], data[0])
    fits.PrimaryHDU(data.astype(np.float32), header).writeto(target)
    return target


def _dead_across_halpha(wavelength: np.ndarray, flux: np.ndarray) -> None:
    i = int(np.searchsorted(wavelength, HALPHA - 15.0))
    flux[i : i + 20] = flux[i]  # 20 LAMOST pixels: 30 Å stuck at one value


def _spike(wavelength: np.ndarray, flux: np.ndarray) -> None:
    i = int(np.searchsorted(wavelength, 6610.0))
    flux[i] += 1.5 * np.median(flux[i - 10 : i + 10])


def test_a_30_angstrom_dead_stretch_is_refused_by_name(real_data, tmp_path):
    source = sorted((real_data / "lamost-dr2").glob("*.fits"))[0]
    path = _planted_lamost(source, tmp_path / "dead.fits", _dead_across_halpha)
    spectrum = read_spectrum(path)
    with pytest.raises(SpectrumError) as caught:
        screen_spectrum(spectrum, AdaptConfig())
    assert caught.value.reason is Reason.DEAD_PIXELS
    assert "30." in caught.value.detail or "31." in caught.value.detail, caught.value.detail
    # without the check, adaptation took the flat stretch for data
    assert not adapt([read_spectrum(path)]).failures


def test_a_spike_is_masked_kept_and_flagged(real_data, tmp_path):
    source = sorted((real_data / "lamost-dr2").glob("*.fits"))[1]
    path = _planted_lamost(source, tmp_path / "spike.fits", _spike)
    spectrum = read_spectrum(path)
    assert screen_spectrum(spectrum, AdaptConfig()) == COSMIC_RAY
    wavelength, flux, _, _ = _window(path)
    spiked = int(np.searchsorted(wavelength, 6610.0))
    assert np.flatnonzero(find_defects(flux[None]).spikes[0]).tolist() == [spiked]
    # masked: the features stay near those of the clean spectrum (the one pixel is
    # interpolated over: 1.2 at most), where the spike left a 7-sigma "line"
    clean = adapt([read_spectrum(source)]).features[0]
    masked = np.abs(adapt([spectrum]).features[0] - clean).max()
    unmasked = np.abs(adapt([read_spectrum(path)]).features[0] - clean).max()
    assert masked < unmasked / 4, (masked, unmasked)


def test_a_short_dead_run_is_kept_and_flagged(real_data):
    """Ondrejov's 0.26 Å pixels: 8 stuck pixels (2 Å) are bridged, not refused."""
    spectrum = read_spectrum(real_data / "ondrejov" / "uc090038.fits")
    i = int(np.searchsorted(spectrum.wavelength, 6600.0))
    spectrum.flux[i : i + 8] = spectrum.flux[i]
    assert screen_spectrum(spectrum, AdaptConfig()) == DEAD_RUN
    assert spectrum.mask is not None and spectrum.mask[i : i + 8].all()
    assert not adapt([spectrum]).failures


def test_tree_ingest_stores_the_flags_and_tap_publishes_them(real_data, tmp_path):
    """Through the bulk door: refused with its reason, flags stored and queryable."""
    from astropy.io.votable import parse_single_table
    from starlette.testclient import TestClient

    from service.app import create_app
    from service.jobs.ingest.tree import ingest_tree
    from service.settings import Settings

    lamost = sorted((real_data / "lamost-dr2").glob("*.fits"))
    root = tmp_path / "tree" / "0000"
    root.mkdir(parents=True)
    _planted_lamost(lamost[0], root / "dead.fits", _dead_across_halpha)
    _planted_lamost(lamost[1], root / "spike.fits", _spike)
    shutil.copy(lamost[2], root / "clean.fits")
    settings = Settings(home=tmp_path / "home", demo_archive_size=0, workers=1, simbad="off")
    summary = ingest_tree(settings, tmp_path / "tree", "pool", workers=1)
    assert summary["added"] == 2 and summary["failed"] == {"DEAD_PIXELS": 1}, summary
    query = (
        "SELECT s.access_url, s.quality_flag, s.magnitude FROM alvo.spectrum AS s "
        "WHERE s.quality_flag IS NULL OR s.quality_flag = 'cosmic-ray' ORDER BY s.access_url"
    )
    with TestClient(create_app(settings)) as client:
        answer = client.post(
            "/tap/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query}
        )
        column = client.post(
            "/tap/sync",
            data={
                "REQUEST": "doQuery",
                "LANG": "ADQL",
                "QUERY": "SELECT ucd, description FROM TAP_SCHEMA.columns "
                "WHERE table_name = 'alvo.spectrum' AND column_name = 'quality_flag'",
            },
        )
    table = parse_single_table(io.BytesIO(answer.content)).to_table()
    flags = {
        Path(str(url)).name: (None if np.ma.is_masked(flag) or not flag else str(flag))
        for url, flag in zip(table["access_url"], table["quality_flag"], strict=True)
    }
    assert flags == {"clean.fits": None, "spike.fits": COSMIC_RAY}
    # the catalogue magnitude (MAG* of MAGTYPE's r, else V band) reached the table
    for url, mag in zip(table["access_url"], table["magnitude"], strict=True):
        header = fits.getheader(root / Path(str(url)).name)
        bands = header["MAGTYPE"].lower()
        band = bands.index("r") if "r" in bands else bands.index("v")
        assert float(mag) == pytest.approx(header[f"MAG{band + 1}"]), header["MAGTYPE"]
    meta = parse_single_table(io.BytesIO(column.content)).to_table()
    assert str(meta["ucd"][0]) == "meta.code.qual" and "cosmic-ray" in str(meta["description"][0])


def test_a_noise_free_model_is_not_stuck_but_the_same_with_noise_and_a_dead_run_is() -> None:
    """A template's flat continuum repeats one value by construction (a theory
    service's spectra, a test's): not a detector fault. An observed spectrum has
    noise, so the same stretch of identical values in it is."""
    x = np.arange(140, dtype=np.float64)
    model = 100.0 * (1.0 + 2.0 * np.exp(-0.5 * ((x - 70.0) / 3.0) ** 2))
    assert not find_defects(model).dead.any()
    noisy = model + np.random.default_rng(3).normal(0.0, 1.0, x.size)
    noisy[20:40] = noisy[20]  # a stuck read-out of 20 pixels
    assert find_defects(noisy).dead[0, 20:40].all()
    assert find_defects(np.full(140, 100.0)).dead.all()  # wholly constant: dead through

"""Quality cues on the labelling page, in Debian's Chromium: dead runs shaded and no
±1σ band across them, cosmic-ray spikes marked, the plot's words from EW(Hα) and its
error (noise is no peak), and a smoothing control remembered across rows and reloads.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from service.web.oracle import spectrum_views
from tests.test_spectra_defects import _dead_across_halpha, _planted_lamost, _spike
from tests.web_world import served_world

STATIC = Path(__file__).resolve().parents[2] / "service" / "web" / "static"
HALPHA = 6564.61


def _scripts_page(browser):  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.set_content("<canvas id=c style='width:800px;height:300px'></canvas>")
    for name in ("plot.js", "quality.js"):
        page.add_script_tag(path=str(STATIC / name))
    return page


def _noise_only(source: Path, target: Path, seed: int = 3) -> Path:
    """A LAMOST file whose flux is a flat continuum of 100 with S/N 5 noise and no line."""
    with fits.open(source) as hdus:
        data = np.array(hdus[0].data, dtype=np.float64)
        header = hdus[0].header.copy()
    rng = np.random.default_rng(seed)
    data[0] = 100.0 + rng.normal(0.0, 20.0, data.shape[1])
    data[1] = 1.0 / 20.0**2
    data[3] = 0  # andmask: all good
    fits.PrimaryHDU(data.astype(np.float32), header).writeto(target)
    return target


def _native(path: Path) -> dict:  # type: ignore[type-arg]
    views = spectrum_views([path])
    native = dict(views.native[0])
    native["wavelength"] = views.native_grids[native["grid"]]
    return native


def test_the_words_say_emission_only_where_the_ew_is_significant(real_data, browser, tmp_path):
    lamost = sorted((real_data / "lamost-dr2").glob("*.fits"))[0]
    noise = _native(_noise_only(lamost, tmp_path / "noise.fits"))
    emission = _native(real_data / "lamost-dr1" / "bt-cmi-lamost.fits")  # BT CMi, a Be star
    # the old words: the highest pixel within 10 Å of H-alpha over the median
    wavelength = np.frombuffer(base64.b64decode(noise["wavelength"]), "<f4")
    flux = np.frombuffer(base64.b64decode(noise["flux"]), "<f4")
    near = np.abs(wavelength - HALPHA) <= 10
    assert flux[near].max() / np.median(flux) > 1.1  # "H-alpha peaks at 1.3 times" before
    page = _scripts_page(browser)
    words = page.evaluate(
        "(spectra) => spectra.map((s) => AlvoQuality.describeHalpha(s))", [noise, emission]
    )
    assert words[0].startswith("no significant Hα emission"), words[0]
    assert words[1].startswith("Hα in emission, EW −"), words[1]
    ew, error = emission["ew_halpha"]
    assert f"{abs(ew):.1f} ± {error:.1f} Å" in words[1] and ew < -3 * error


def test_a_dead_run_is_shaded_without_a_band_and_a_spike_is_marked(real_data, browser, tmp_path):
    lamost = sorted((real_data / "lamost-dr2").glob("*.fits"))
    dead = _native(_planted_lamost(lamost[0], tmp_path / "dead.fits", _dead_across_halpha))
    spike = _native(_planted_lamost(lamost[1], tmp_path / "spike.fits", _spike))
    clean = _native(lamost[2])
    ((lo, hi),) = dead["defects"]["dead"]
    assert 28 <= hi - lo <= 31 and lo < HALPHA < hi and dead["defects"]["spikes"] == []
    assert spike["defects"] == {"dead": [], "spikes": [pytest.approx(6610, abs=1.6)]}
    assert clean["defects"] == {"dead": [], "spikes": []}
    page = _scripts_page(browser)
    found = page.evaluate(
        """([spectrum, lo, hi]) => {
          const wavelength = AlvoPlot.floats(spectrum.wavelength);
          const sigma = AlvoPlot.floats(spectrum.sigma);
          const inside = [], outside = [];
          wavelength.forEach((x, i) => (x > lo && x < hi ? inside : outside).push(sigma[i]));
          const canvas = document.getElementById("c");
          const data = { wavelength, flux: AlvoPlot.floats(spectrum.flux), sigma,
            adapted: new Float32Array(140), grid: AlvoPlot.grid([6519, 6732, 140]),
            defects: spectrum.defects };
          AlvoPlot.spectrum(canvas, data, { lo: 6520, hi: 6610 }, { big: true, size: [800, 300] });
          const ratio = window.devicePixelRatio || 1;
          // the frame runs from x = 56 to 752 CSS px over 6520-6610 Å; y = 40 is inside it
          const x = 56 + ((lo + hi) / 2 - 6520) / 90 * (752 - 56);
          const pixel = canvas.getContext("2d").getImageData(x * ratio, 40 * ratio, 1, 1).data;
          return { pixel: Array.from(pixel), inside: inside.filter(Number.isFinite).length,
            outside: outside.filter(Number.isFinite).length };
        }""",
        [dead, lo, hi],
    )
    assert found["inside"] == 0 and found["outside"] > 50  # no band across the dead run
    red, _green, blue, alpha = found["pixel"]
    assert alpha > 0 and red > blue + 15, found["pixel"]  # shaded


def test_smoothing_is_chosen_by_key_and_kept_across_rows_and_reloads(browser, tmp_path):
    with served_world(tmp_path, n_pool=60, batch=12, sample=4) as (url, _world):
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/oracle/{_world.campaign}")
        page.wait_for_selector("body[data-ready='1']")
        first = "document.querySelector('#rows canvas.plot')"
        before = page.evaluate(f"{first}.toDataURL()")
        assert page.evaluate("AlvoQuality.mode") == "none"
        page.keyboard.press("o")
        assert page.input_value("select.smoothing") == "box3"
        page.wait_for_function(f"{first}.toDataURL() !== {json.dumps(before)}")
        page.keyboard.press("j")
        page.keyboard.press("j")
        assert page.evaluate("AlvoQuality.mode") == "box3"  # the next rows too
        page.select_option("select.smoothing", "gauss1.5")
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        assert page.input_value("select.smoothing") == "gauss1.5"
        label = page.get_attribute("#rows canvas.plot", "aria-label") or ""
        assert "peaks at" not in label and ("EW" in label or "not measurable" in label), label
        assert "mag –" not in page.inner_text("#rows article.row")  # the magnitude is shown
        context.close()

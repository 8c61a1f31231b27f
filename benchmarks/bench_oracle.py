"""The oracle page's batch: one compact JSON vs one server-rendered PNG per spectrum.

Builds the web tests' campaign world (130-row batch: 100 query + 30 precision
sample, LAMOST-shaped files in the fetch cache) in a temporary home, then times
over the same rows in the same run (CPU seconds of this process, best of R):

* alvo -- ``service.web.oracle.batch`` + ``json.dumps``: every row's metadata,
  probabilities, votes, native H-alpha pixels (bulk reader) and adapted vector,
  drawn by the browser;
* reference -- what a page of server-side plots costs: ``read_spectrum`` each
  file and render a 300x130 px matplotlib PNG of its window (VO-CLOUD-style
  images, before any metadata).

Prints both times, the payload sizes, and the ratio reference / alvo (goal: the
page's data faster to make than the images alone). With ``--browser`` it also
measures, in headless Debian Chromium at 1440x900:

* time to interactive of the batch page (median of 5 loads after one warm-up;
  goal <= 500 ms warm): navigation start to the first screen of plots drawn and
  the keys live;
* key -> next paint: a verdict key (or j/k) pressed to the next frame after the
  page's handler ran (requestAnimationFrame, then a task: the frame is painted),
  over a whole batch labelled by keys; goal p90 <= 100 ms. The page carries the
  overview grid (grid.js) and the labelling guide (guide.js): every tenth row is
  flagged (f), every 25th key opens the grid (g) and the next closes it, and the
  guide is opened beside the zoom (h) and closed (Esc) on the way, so those keys
  count in the same percentiles (and are also reported alone).

Prints goal / measured for each, and the load average the run saw.

    .venv/bin/python benchmarks/bench_oracle.py [--browser] [R]
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.net.fetch import Fetcher  # noqa: E402
from service.spectra import read_spectrum  # noqa: E402
from service.web import oracle  # noqa: E402
from service.web.oracle import WINDOW  # noqa: E402
from tests.web_world import build_world, chromium, served_world  # noqa: E402


def cpu() -> float:
    return time.process_time()


def alvo_batch(settings) -> int:  # type: ignore[no-untyped-def]
    document = oracle.batch(settings, oracle.BatchRequest("be"))
    return len(json.dumps(document).encode())


def reference_pngs(settings, urls: list[str]) -> int:  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cache = Fetcher(settings.home / "cache" / "spectra")
    total = 0
    for url in urls:
        path = cache.cache_path(url)
        if not path.exists():
            continue
        spectrum = read_spectrum(path)
        inside = (spectrum.wavelength >= WINDOW[0]) & (spectrum.wavelength <= WINDOW[1])
        figure, axes = plt.subplots(figsize=(3.0, 1.3), dpi=100)
        axes.plot(spectrum.wavelength[inside], spectrum.flux[inside], lw=0.8, color="k")
        out = io.BytesIO()
        figure.savefig(out, format="png")
        plt.close(figure)
        total += len(out.getvalue())
    return total


def best(function, repeats: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    times, size = [], 0
    for _ in range(repeats):
        started = cpu()
        size = function()
        times.append(cpu() - started)
    return min(times), size


#: Installed before the page's own handlers (capture phase): time from each key press
#: to the frame after the page reacted to it.
KEY_TO_PAINT = """
window.keyPaints = [];
document.addEventListener("keydown", () => {
  const pressed = performance.now();
  requestAnimationFrame(() => setTimeout(() => keyPaints.push(performance.now() - pressed), 0));
}, true);
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def browser_timings() -> dict[str, float]:
    """Time to interactive (median of warm loads) and key -> paint p50/p90 (ms)."""
    with (
        tempfile.TemporaryDirectory() as home,
        served_world(Path(home)) as (url, _),
        chromium() as browser,
    ):
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        loads = []
        for _ in range(6):
            page = context.new_page()
            page.goto(f"{url}/oracle/be")
            page.wait_for_selector("body[data-ready='1']")
            loads.append(page.evaluate("alvoReady.sinceNavigationMs"))
            page.close()
        page = context.new_page()
        page.add_init_script(KEY_TO_PAINT)
        page.goto(f"{url}/oracle/be")
        page.wait_for_selector("body[data-ready='1']")
        rows = page.evaluate("alvo.rows.length")
        keys, extra = [], []  # extra: the grid's and the guide's own keys
        for i in range(rows):
            if i % 25 == 12:
                keys += ["g", "g"]  # the grid open, then closed
                extra += [len(keys) - 2, len(keys) - 1]
            if i % 50 == 30:
                keys += ["h", "Escape"]  # the guide beside the zoom, then closed
                extra += [len(keys) - 2]
            if i % 10 == 5:
                keys.append("f")
                extra.append(len(keys) - 1)
            keys.append("jk"[i % 2] if i % 10 == 9 else "13"[i % 2])
        for n, key in enumerate(keys):
            page.keyboard.press(key)
            page.wait_for_function(f"keyPaints.length > {n}")
            if key == "h":
                page.wait_for_selector("#guide dl.conventions")
        paints = page.evaluate("keyPaints")
    own = [paints[n] for n in extra]
    by_key: dict[str, list[float]] = {}
    for n in extra:
        by_key.setdefault(keys[n], []).append(paints[n])
    return {
        "by_key": {k: (statistics.median(v), max(v), len(v)) for k, v in by_key.items()},
        "tti_ms": statistics.median(loads[1:]),
        "key_paint_p50_ms": percentile(paints, 0.5),
        "key_paint_p90_ms": percentile(paints, 0.9),
        "keys": len(paints),
        "grid_guide_flag_p90_ms": percentile(own, 0.9),
        "grid_guide_flag_max_ms": max(own),
        "grid_guide_flag_keys": len(own),
    }


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    repeats = int(args[0]) if args else 3
    with tempfile.TemporaryDirectory() as home:
        world = build_world(Path(home), port=8000)
        rows = oracle.batch(world.settings, oracle.BatchRequest("be"))["rows"]
        urls = [row["access_url"] for row in rows]
        alvo_s, alvo_bytes = best(lambda: alvo_batch(world.settings), repeats)
        ref_s, ref_bytes = best(lambda: reference_pngs(world.settings, urls), repeats)
    print(f"batch of {len(rows)} rows")
    for name, seconds, size in (
        ("alvo JSON (data for client-side plots)", alvo_s, alvo_bytes),
        ("reference (one PNG per spectrum)", ref_s, ref_bytes),
    ):
        print(f"{name:40s} {seconds * 1000:7.1f} ms CPU {size / 1024:6.0f} kB")
    print(f"reference / alvo: {ref_s / alvo_s:.1f}x time, {ref_bytes / alvo_bytes:.1f}x size")
    if "--browser" in sys.argv:
        import os

        before = os.getloadavg()[0]
        got = browser_timings()
        tti, p90 = got["tti_ms"], got["key_paint_p90_ms"]
        print(f"time to interactive (Chromium, warm): {tti:.0f} ms (goal 500: {500 / tti:.2f}x)")
        print(
            f"key -> next paint over {got['keys']} keys: p50 {got['key_paint_p50_ms']:.0f} ms, "
            f"p90 {p90:.0f} ms (goal 100: {100 / p90:.2f}x)"
        )
        own_p90, own_max = got["grid_guide_flag_p90_ms"], got["grid_guide_flag_max_ms"]
        print(
            f"  of which grid (g), guide (h) and flag (f) keys: {got['grid_guide_flag_keys']}, "
            f"p90 {own_p90:.0f} ms, max {own_max:.0f} ms; "
            + ", ".join(
                f"{k} median {m:.0f} max {x:.0f} ms ({n})" for k, (m, x, n) in got["by_key"].items()
            )
        )
        print(f"load average (1 min) before / after: {before:.1f} / {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""The labelling page's sky panel in a real headless Chromium: Aladin Lite over a local HiPS.

The world's pool is spread over the whole sky; a small demo sky (a synthetic image
made by :mod:`service.archive.skyimage` and turned into a HiPS by Debian's Hipsgen) is
made around one query spectrum, which has another spectrum 2" away. On that row the
panel must draw the local HiPS (the screenshot is not blank, and is not the same
panel with the HiPS tiles withheld), the fibre and the neighbour. Everything outside
the service is cut off in the browser (as offline): on a row outside the demo sky the
panel says the survey cannot be reached, and labelling goes on.
"""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
import pytest

from service.archive.skyimage import hipsgen_command, make_sky
from service.reasons import AlvoError
from tests.web_world import served_world

VIEWPORT = {"width": 1440, "height": 900}
#: Bright spots (stars) the drawn demo sky must add to the view beyond the overlays'
#: own marks: the test sky holds ~10 field stars in the 4′ view (docs/discovery.md).
STARS_FLOOR = 4
#: The panel's status once Aladin Lite has drawn the demo sky with its marks.
DREW_DEMO_SKY = "document.querySelector('#sky-status').textContent.startsWith('alvo demo sky')"


def aladin_lite_or_skip() -> None:
    from service.web.sky import install_aladin_lite

    try:
        install_aladin_lite()
    except (OSError, AlvoError) as error:
        pytest.skip(f"Aladin Lite not available: {error}")


@pytest.fixture(scope="module")
def sky_world(tmp_path_factory):
    if hipsgen_command() is None:
        pytest.skip("Hipsgen needs java and Debian's aladin (tests/peers/install-debian-deps.sh)")
    aladin_lite_or_skip()
    with served_world(tmp_path_factory.mktemp("sky")) as (url, world):
        rows = {r["id"]: r for r in httpx.get(f"{url}/campaigns/be/batch").json()["rows"]}
        target = rows[world.query_ids[3]]  # the query spectrum with a neighbour 2" away
        started = time.monotonic()
        make_sky(world.settings.home, np.array([target["ra"]]), np.array([target["dec"]]),
                 np.array([12.0]), margin_deg=0.1)  # fmt: skip
        world.hipsgen_s = time.monotonic() - started
        yield url, world, target


def offline_page(browser, url: str, withhold: str | None = None):
    """A page of the labelling view with every request off the service refused (and
    ``withhold``, a URL glob of the service, too)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.route(lambda u: not u.startswith(url), lambda route: route.abort())
    if withhold:
        context.route(withhold, lambda route: route.abort())
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(f"{url}/oracle/be")
    page.wait_for_selector("body[data-ready='1']")
    return page


def go_to(page, spectrum_id: int) -> None:
    """Move the cursor with j to the row of ``spectrum_id``."""
    for _ in range(200):
        if page.evaluate("alvo.rows[alvo.view[alvo.cursor]].id") == spectrum_id:
            return
        page.keyboard.press("j")
    raise AssertionError(f"row {spectrum_id} not reached")


def view_pixels(page) -> np.ndarray:
    """Greyscale pixels of the sky view's screenshot, its middle 80 % (off Aladin
    Lite's logo in a corner)."""
    from PIL import Image

    shot = Image.open(io.BytesIO(page.locator("#sky-view").screenshot())).convert("L")
    pixels = np.asarray(shot, float)
    h, w = pixels.shape
    return pixels[h // 10 : h - h // 10, w // 10 : w - w // 10]


def spots(pixels: np.ndarray) -> int:
    """Bright spots of the view (stars, and the overlays' marks): connected pixels
    more than 25 grey levels above the view's median."""
    from scipy import ndimage

    return int(ndimage.label(pixels > np.median(pixels) + 25)[1])


def settled(page, deadline_s: float = 30.0) -> np.ndarray:
    """The view once two screenshots 0.5 s apart agree (its tiles are in)."""
    end = time.monotonic() + deadline_s
    last = view_pixels(page)
    while time.monotonic() < end:
        time.sleep(0.5)
        now = view_pixels(page)
        if now.shape == last.shape and np.abs(now - last).mean() < 0.2 and now.std() > 0:
            return now
        last = now
    return last


def test_panel_draws_the_local_hips_around_a_candidate(sky_world, browser, artifacts):
    url, world, target = sky_world
    context = httpx.get(f"{url}/sky", params={"RA": target["ra"], "DEC": target["dec"],
                                              "ID": target["id"]}).json()  # fmt: skip
    assert context["survey"]["local"] and context["survey"]["url"] == "sky/demo"
    assert context["neighbours"][0]["spectrum_id"] == world.neighbour
    assert context["neighbours"][0]["separation_arcsec"] == pytest.approx(2.0, abs=0.05)

    page = offline_page(browser, url)
    go_to(page, target["id"])
    page.wait_for_function(DREW_DEMO_SKY, timeout=30_000)
    status = page.locator("#sky-status").inner_text()
    assert "demo sky" in status and "3.3″ fibre" in status, status
    assert page.locator(f"#sky-neighbours li[data-spectrum-id='{world.neighbour}']").count() == 1
    drawn = settled(page)
    page.locator("#sky").screenshot(path=str(artifacts / "sky-panel.png"))
    assert page.errors == []

    # the same panel without the HiPS tiles: only the overlays -- the texture came from them
    bare = offline_page(browser, url, withhold=f"{url}/sky/demo/Norder*/**")
    go_to(bare, target["id"])
    bare.wait_for_function(DREW_DEMO_SKY, timeout=30_000)
    withheld = settled(bare, 5.0)
    bare.locator("#sky").screenshot(path=str(artifacts / "sky-panel-no-tiles.png"))
    (artifacts / "sky-panel.txt").write_text(
        f"with tiles: {spots(drawn)} spots, grey std {drawn.std():.2f}; without: "
        f"{spots(withheld)} spots, std {withheld.std():.2f}; Hipsgen of the test sky "
        f"{world.hipsgen_s:.1f} s\n"
    )
    assert spots(drawn) >= spots(withheld) + STARS_FLOOR, (spots(drawn), spots(withheld))
    assert drawn.std() > withheld.std()


def test_page_works_with_the_hips_unreachable(sky_world, browser):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # browser: it is there

    url, _, target = sky_world
    page = offline_page(browser, url, withhold=f"{url}/sky/demo/**")
    first = page.evaluate("alvo.rows[alvo.view[alvo.cursor]]")
    # the first row lies outside the demo sky: ALVO_HIPS (CDS DSS2) is off the network
    page.wait_for_function(
        "document.querySelector('#sky-status').textContent.includes('cannot be reached')",
        timeout=30_000,
    )
    assert "CDS/P/DSS2/color" in page.locator("#sky-status").inner_text()
    assert page.evaluate("alvoSky.aladin") is None  # nothing started that would fail later
    page.keyboard.press("3")
    page.wait_for_function(
        "id => alvo.rows.find(r => r.id === id).mine === 'absorption'", arg=first["id"]
    )
    # the demo sky withheld: its row says so too, and the page still labels
    go_to(page, target["id"])
    page.wait_for_function(
        "document.querySelector('#sky-status').textContent.includes('demo sky (synthetic) cannot')",
        timeout=30_000,
    )
    page.keyboard.press("1")
    # the page keeps each label queued until the service has stored it. CI once found no
    # label stored 20 s after the key (cause not found; not seen here in 9 runs): wait for
    # the page's own acknowledgement, and say what it still held if it never comes
    try:
        page.wait_for_function(
            "id => !alvo.queue.length && !alvo.sending && alvo.rows.find(r => r.id === id).mine",
            arg=target["id"],
            timeout=90_000,
        )
    except PlaywrightTimeout:  # what the page still holds, to find out why
        state = "({queue: alvo.queue, sending: alvo.sending, lastError: alvo.lastError})"
        raise AssertionError(f"label not acknowledged: {page.evaluate(state)}") from None
    labels = httpx.get(f"{url}/campaigns/be/labels", params={"FORMAT": "csv"}).text
    assert str(target["pubdid"]) in labels and str(first["pubdid"]) in labels
    assert page.evaluate("alvo.lastError") == ""
    assert page.errors == []

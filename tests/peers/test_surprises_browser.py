"""The surprises view and "more like this" in a real headless Chromium (issue 22).

The oracle opens the surprises view, answers ``i`` (interesting) on the first surprise
and ``b`` (boring) on the next, and the service keeps those answers apart from the class
verdicts (the label export and the training set do not see them); then ``m`` on a
spectrum queues its nearest neighbours in the network's embedding as an extra batch,
each row with role ``similar``, labelled with the usual keys; a reload keeps that batch.
"""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

from service.store.campaigns import Campaigns
from tests.surprise_world import add_surprises
from tests.web_world import served_world

#: [spectrum id, role, my class verdict, my relevance answer] of the current row
CURRENT = "(r => [r.id, r.role, r.mine, r.relevance])(alvo.rows[alvo.view[alvo.cursor]])"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with served_world(tmp_path_factory.mktemp("surprises-browser")) as (url, world):
        yield url, world, add_surprises(world)


def eventually(check, seconds: float = 10.0):
    """``check()``'s first truthy value, asked until the deadline (then the last one)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_surprises_interesting_kept_apart_and_more_like_this(served, browser, artifacts):
    url, world, ranked = served
    campaigns = Campaigns(world.settings)
    campaign = campaigns.require("be")
    training = campaigns.training_set(campaign)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{url}/oracle/be?filter=surprises")
    page.wait_for_selector("body[data-ready='1']")
    assert page.evaluate("alvo.rows.map(r => r.id)") == ranked
    assert page.locator("article.row .badge.surprise").count() == len(ranked)
    assert page.evaluate(CURRENT) == [ranked[0], "surprise", None, None]
    page.keyboard.press("i")
    assert page.evaluate("alvo.rows[0].relevance") == "interesting"
    assert page.evaluate(CURRENT)[0] == ranked[1]  # on to the next surprise
    page.keyboard.press("b")
    page.wait_for_selector("#sync.saved")
    page.screenshot(path=str(artifacts / "oracle-surprises.png"))

    def answers() -> dict[int, str]:
        return {sid: verdict for sid, _, verdict in campaigns.relevance_per_user(campaign)}

    assert eventually(lambda: answers() == {ranked[0]: "interesting", ranked[1]: "boring"})
    labels = httpx.get(f"{url}/campaigns/be/labels?FORMAT=json").json()["labels"]
    assert not {x["label"] for x in labels} & {"interesting", "boring"}
    for was, now in zip(training, campaigns.training_set(campaign), strict=True):
        np.testing.assert_array_equal(was, now)  # never in the training set
    assert page.locator(f"#row-{ranked[0]} .relevance.interesting").count() == 1

    # m: the current spectrum's neighbours join the page as an extra batch (role similar)
    page.keyboard.press("k")
    like = page.evaluate("alvo.rows[alvo.view[alvo.cursor]].pubdid")
    page.keyboard.press("m")
    page.wait_for_selector("article.row .badge.similar")
    similar = page.evaluate("alvo.rows.filter(r => r.role === 'similar').map(r => r.id)")
    expected = httpx.get(f"{url}/campaigns/be/batch?ROLE=similar&OF={like}&K=10").json()
    fresh = [r["id"] for r in expected["rows"] if r["id"] not in ranked]
    assert similar == fresh and len(similar) >= 5
    current = page.evaluate(CURRENT)
    assert current[:2] == [similar[0], "similar"]  # the cursor is on the first neighbour
    page.wait_for_function(  # its plot drawn from the merged wavelength grids
        f"document.querySelector('#row-{similar[0]} canvas.plot').width > 0"
    )
    page.keyboard.press("1")  # a class verdict, like any row
    page.wait_for_selector("#sync.saved")
    assert eventually(lambda: campaigns.labels(campaign).get(similar[0]) == "single-peak")
    page.screenshot(path=str(artifacts / "oracle-more-like-this.png"))
    page.reload()  # the extra batch is kept across a reload
    page.wait_for_selector("body[data-ready='1']")
    assert page.evaluate("alvo.rows.filter(r => r.role === 'similar').map(r => r.id)") == similar
    assert errors == []
    context.close()

"""A newcomer's first session, in a real headless Chromium, with no command line.

A fresh home with the demo archive (as ``make run`` makes it) behind a real
uvicorn; the browser opens ``/``, starts a demo campaign from the form (the
demo archive's two collections are preselected; the advanced options keep the
network small and the epochs few, so the whole path takes well under a
minute), follows the ingest and iterate jobs to the first batch, labels every
row with the keyboard (reloading half way: the cursor comes back on the first
unlabelled row), is told that few uncertain candidates are left, opens the
overview grid and jumps from it to a row, writes a comment that a pyvo ADQL query
then finds in ``alvo.label``, starts the next iteration from the labelling page and
gets the second batch, opens its surprises, answers one interesting and asks for
more like one (key m). axe-core checks every page on the way. Screenshots go
to ``test-artifacts/``.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from service.archive.generate import ensure_demo_archive
from service.settings import Settings
from tests.peers.axe import axe_script, violations
from tests.vo_fixture import free_port, live_server

#: spectra per demo collection: enough for a 100-spectrum batch, quick to make
DEMO_SIZE = 300
KEYS = {"single-peak": "1", "double-peak": "2", "absorption": "3"}
FAST = {"EPOCHS": "3", "MODEL": "small", "PRECISION_SAMPLE": "10"}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from service.app import create_app

    home = tmp_path_factory.mktemp("newcomer-home")
    ensure_demo_archive(home, DEMO_SIZE)
    port = free_port()
    settings = Settings(home=home, port=port, demo_archive_size=DEMO_SIZE, simbad="off")
    with live_server(create_app(settings), port, lifespan="on") as url:
        yield url


@pytest.fixture(scope="module")
def axe():
    return axe_script()


def job_document(phase: str, fraction: float, started: float = 20) -> str:
    """A job that started ``started`` seconds ago (by this machine's clock)."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=started)
    return (
        '<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0"><uws:jobId>j</uws:jobId>'
        f"<uws:phase>{phase}</uws:phase>"
        f"<uws:startTime>{start.isoformat(timespec='seconds').replace('+00:00', 'Z')}"
        "</uws:startTime><uws:jobInfo>"
        f'<progress xmlns="urn:x-uws:jobinfo" fraction="{fraction}">training</progress>'
        "</uws:jobInfo></uws:job>"
    )


def ready(page, url: str):
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return page


def test_newcomer_reaches_a_second_batch_from_the_browser(service, browser, axe, artifacts):
    url = service
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    checked: dict[str, list] = {}

    ready(page, f"{url}/")
    assert page.locator("h1").first.inner_text().startswith("alvo")
    assert page.locator("input[name=source-kind][value=demo]").is_checked()
    assert page.locator("input[name=pool-kind][value=demo]").is_checked()
    page.screenshot(path=str(artifacts / "newcomer-1-landing.png"), full_page=True)
    checked["landing"] = violations(page, axe)

    # a job's progress says how long so far and, once the fraction moves, how long is left
    documents = iter(
        [job_document("EXECUTING", 0.1), job_document("EXECUTING", 0.5)]
        + [job_document("COMPLETED", 1.0)] * 5
    )
    page.route(
        "**/scripted-job**",
        lambda route: route.fulfill(content_type="text/xml", body=next(documents)),
    )
    said = page.evaluate(
        """async () => { const said = [];
        await AlvoJobs.follow(`${location.origin}/scripted-job`,
                              (s) => said.push(AlvoJobs.describe(s)));
        return said; }"""
    )
    # from the job's own startTime (20 s ago), not from when this page first saw it:
    # 10 % of the expected time in 20 s is about 3 minutes left; 50 % about 20 s
    assert said[0].startswith("training · 10 % · ") and "so far" in said[0], said[0]
    assert re.search(r"· 2\d s so far · about (2 min 5\d|3 min \d{1,2}) s left", said[0]), said
    assert any(re.search(r"training · 50 % · 2\d s so far · about [12]\d s left", x) for x in said)
    assert said[-1].startswith("completed in")
    page.unroute("**/scripted-job**")
    # jobs started elsewhere (alvo submit, pyvo) are listed from the UWS job lists
    assert page.locator("#running-list").inner_text() == "No job is running."
    page.route(
        "**/iterate?PHASE=QUEUED&PHASE=EXECUTING",
        lambda route: route.fulfill(
            content_type="text/xml",
            body='<uws:jobs xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" '
            'xmlns:xlink="http://www.w3.org/1999/xlink"><uws:jobref id="elsewhere" '
            f'xlink:href="{url}/scripted-job"><uws:phase>EXECUTING</uws:phase></uws:jobref>'
            "</uws:jobs>",
        ),
    )
    running = job_document("EXECUTING", 0.3)  # for as long as the page looks
    page.route(
        "**/scripted-job**", lambda route: route.fulfill(content_type="text/xml", body=running)
    )
    page.reload()
    page.wait_for_selector("#running-list li:has-text('iterate elsewhere')")
    page.wait_for_selector("#running-list .step-state:has-text('30 %')")
    page.unroute("**/iterate?PHASE=QUEUED&PHASE=EXECUTING")
    page.unroute("**/scripted-job**")
    ready(page, f"{url}/")

    page.locator("#start details.advanced summary").click()
    for name, value in FAST.items():
        field = page.locator(f"#start-form [name={name}]")
        if name == "MODEL":
            field.select_option(value)
        else:
            field.fill(value)
    page.locator("#start-button").click()
    page.wait_for_selector("#step-2", timeout=180_000)  # both ingests done, iterate started
    page.screenshot(path=str(artifacts / "newcomer-2-jobs.png"), full_page=True)
    page.wait_for_selector("#open-batch", timeout=240_000)
    assert page.locator(".step-state[data-phase=COMPLETED]").count() == 3
    checked["landing, jobs done"] = violations(page, axe)
    page.locator("#open-batch").click()

    page.wait_for_selector("body[data-ready='1']")
    assert page.evaluate("alvo.doc.iteration") == 0
    rows = page.evaluate("alvo.rows.map(r => [r.id, r.role, r.predicted])")
    roles = [role for _, role, _ in rows]
    # the batch: at most 100 the network is unsure of (no padding unless asked for),
    # beside a random precision sample of predicted emission (as many as there are, <= 10)
    assert rows and roles.count("query") <= 100 and "padding" not in roles
    assert roles.count("precision-sample") <= int(FAST["PRECISION_SAMPLE"])
    assert set(roles) <= {"query", "precision-sample"}
    said = page.locator("#composition").inner_text()  # and the page says what it is
    assert f"{roles.count('query')} the network is unsure of (query)" in said
    # CANDIDATES=auto: with no label of the pool yet, the candidates are the recall-targeted
    # cut (docs/learning.md), wide on the demo's 3-epoch network, so the batch takes every
    # open candidate up to 100; the page's "only N uncertain candidates left" (issue 23)
    # is checked on the second batch below, where argmax leaves fewer than 100
    n_candidates = page.evaluate("alvo.doc.n_candidates")
    expected = min(100, n_candidates - roles.count("precision-sample"))
    assert roles.count("query") == expected, (n_candidates, roles.count("query"))
    # the sky panel: the current spectrum's position; here offline, so it says the survey
    # cannot be reached (the demo sky is made by 'alvo serve', not by this test's app)
    page.wait_for_function("document.querySelector('#sky-status').textContent !== ''")
    assert page.locator("#sky").is_visible()
    assert "cannot be reached" in page.locator("#sky-status").inner_text() or page.evaluate(
        "alvoSky.drawn > 0"
    )
    page.screenshot(path=str(artifacts / "newcomer-3-first-batch.png"))
    checked["labelling page"] = violations(page, axe)
    for step, _ in enumerate(rows):  # the newcomer agrees with the network: one key per row
        if step == len(rows) // 2:  # a reload half way: back on the first unlabelled row
            page.wait_for_function("alvo.queue.length === 0")
            page.reload()
            page.wait_for_selector("body[data-ready='1']")
            assert page.evaluate("[alvo.cursor, alvo.rows[alvo.view[alvo.cursor]].mine]") == [
                step,
                None,
            ]
        predicted = page.evaluate("alvo.rows[alvo.view[alvo.cursor]].predicted")
        page.keyboard.press(KEYS[predicted])
    page.wait_for_function("alvo.queue.length === 0")
    done = page.evaluate("alvo.rows.filter(r => r.mine).length")
    assert done == len(rows)
    assert page.locator("#count").inner_text() == f"{len(rows)} / {len(rows)} labelled ✓"
    page.keyboard.press("z")
    page.wait_for_selector("dialog#zoom[open]")
    checked["labelling page, zoom"] = violations(page, axe)
    page.keyboard.press("Escape")

    # the batch at a glance: a thumbnail per row, coloured by verdict; Enter jumps to one
    page.keyboard.press("g")
    page.wait_for_selector("dialog#grid[open]")
    assert page.locator("#grid-cells button.cell").count() == len(rows)
    assert page.locator("#grid-cells button.cell.verdict-none").count() == 0  # all labelled
    checked["labelling page, grid"] = violations(page, axe)
    page.locator("#grid-cells button.cell").nth(3).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("dialog#grid", state="hidden")
    assert page.evaluate("alvo.view[alvo.cursor]") == 3
    # a comment typed on the page is found over TAP with ADQL (pyvo, as a user would)
    note = "newcomer: V>R shoulder, double-peak by convention"
    page.keyboard.press("c")
    page.keyboard.type(note)
    page.keyboard.press("Enter")
    page.keyboard.press("f")
    page.wait_for_function("alvo.queue.length === 0")
    pyvo = pytest.importorskip("pyvo")
    found = (
        pyvo.dal.TAPService(f"{url}/tap")
        .search(
            "SELECT s.pubdid, l.label, l.comment, l.flag FROM alvo.label AS l "
            "JOIN alvo.spectrum AS s ON s.spectrum_id = l.spectrum_id "
            "WHERE l.comment LIKE 'newcomer:%'"
        )
        .to_table()
    )
    third = page.evaluate("(r => [r.pubdid, r.mine])(alvo.rows[3])")
    assert [(r["pubdid"], r["label"], r["comment"], bool(r["flag"])) for r in found] == [
        (*third, note, True)
    ]

    page.locator(".tools details.advanced summary").click()
    page.locator(".tools select[name=MODEL]").select_option("small")
    page.locator(".tools input[name=EPOCHS]").fill("3")
    page.locator("#iterate").click()
    page.wait_for_selector("#job-state[data-phase='COMPLETED']", timeout=240_000)
    page.wait_for_function("alvo.doc.iteration === 1")
    second = page.evaluate("alvo.rows.map(r => [r.id, r.mine, r.role])")
    labelled = {sid for sid, _, _ in rows}
    assert all(mine is None and sid not in labelled for sid, mine, _ in second)
    queried = sum(role == "query" for _, _, role in second)
    assert queried < 100  # the demo pool ran short of uncertain candidates before
    converged = page.locator("#converged").inner_text()  # still said, with the new count
    assert ("no uncertain candidates left" if not queried else f"only {queried}") in converged
    assert page.locator("#absorption-sample").is_visible()  # with what the oracle can do
    assert page.evaluate("[alvo.cursor, window.scrollY]") == [0, 0]  # the new batch from its top
    page.screenshot(path=str(artifacts / "newcomer-4-second-batch.png"))
    # issue 22: the surprises view, an interesting answer, more like this (m)
    page.locator("#filter").select_option("surprises")
    page.wait_for_function("alvo.rows.length > 0 && alvo.rows.every(r => r.role === 'surprise')")
    page.wait_for_function("document.activeElement !== document.querySelector('#filter')")
    surprise = page.evaluate("alvo.rows[alvo.view[alvo.cursor]].id")
    page.keyboard.press("i")
    page.wait_for_selector(f"#row-{surprise} .relevance.interesting")
    page.wait_for_selector("#sync.saved")
    page.keyboard.press("m")  # on the next surprise: its 10 nearest, the new ones appended
    page.wait_for_function("alvo.lastSimilar !== undefined")
    found = page.evaluate("alvo.lastSimilar")
    assert found["added"] + found["onPage"] == 10, found  # (a small pool: many are surprises)
    assert page.locator("article.row .badge.similar").count() == found["added"]
    page.screenshot(path=str(artifacts / "newcomer-4b-surprises.png"))
    checked["labelling page, surprises and more like this"] = violations(page, axe)

    ready(page, f"{url}/oracle")
    page.screenshot(path=str(artifacts / "newcomer-5-overview.png"), full_page=True)
    checked["overview"] = violations(page, axe)
    page.goto(f"{url}/oracle/no-such-campaign")
    assert page.locator("h1").inner_text() == "No campaign named no-such-campaign"
    checked["no such campaign"] = violations(page, axe)
    ready(page, f"{url}/")
    assert page.locator(".campaign-card h3").inner_text() == "be"
    assert page.locator("#campaign-name").input_value() == "be-2"  # a free name, ready to go
    checked["landing with a campaign"] = violations(page, axe)
    (artifacts / "newcomer-axe.json").write_text(json.dumps(checked, indent=1))
    assert errors == []
    assert checked == {page_name: [] for page_name in checked}, checked
    context.close()

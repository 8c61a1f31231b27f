"""The oracle's pages in a real headless Chromium (Debian's, through Playwright).

One oracle labels a whole batch with the keyboard only (with undo, and with
the service unreachable for the last few labels and the tab closed), reloads
and finds every label kept, then starts the next iteration from the page and
watches the UWS job to completion. Screenshots of the main views go to the
``artifacts`` folder; the batch page's time to interactive is measured and
written there too (goal: under one second).
"""

from __future__ import annotations

import datetime as dt
import json
import re

import httpx
import pytest

from tests.web_world import open_page, served_world

KEYS = {"single-peak": "1", "double-peak": "2", "absorption": "3", "not-sure": "4", "bad": "5"}
CLASSES = ("single-peak", "double-peak", "absorption")
VIEWPORT = {"width": 1440, "height": 900}  # a laptop screen
#: [spectrum id, publisher DID, the user's verdict] of the row the keyboard acts on
CURRENT = "(r => [r.id, r.pubdid, r.mine])(alvo.rows[alvo.view[alvo.cursor]])"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with served_world(tmp_path_factory.mktemp("oracle-browser")) as served:
        yield served


def test_batch_page_is_interactive_fast_and_readable(served, browser, artifacts):
    url, world = served
    context = browser.new_context(viewport=VIEWPORT)
    timings = []
    for _ in range(3):  # the first load also warms the service's imports
        page = open_page(context, f"{url}/oracle/be")
        timings.append(page.evaluate("alvoReady"))
        assert page.evaluate("alvo.rows.length") == 100 + len(world.sample_ids)
        assert page.locator("article.row canvas").count() == 130
        batch = "performance.getEntriesByType('resource').filter(e => e.name.includes('/batch'))"
        assert page.evaluate(f"{batch}.length") == 1  # the preloaded request is the one used
        page.close()
    tti = [round(t["sinceNavigationMs"]) for t in timings]
    report = {"batch_rows": 130, "time_to_interactive_ms": tti, "loads": timings}
    (artifacts / "oracle-time-to-interactive.json").write_text(json.dumps(report, indent=1))
    print(f"\noracle batch page of 130 spectra, time to interactive (ms, cold then warm): {tti}")
    page = open_page(context, f"{url}/oracle/be")
    page.screenshot(path=str(artifacts / "oracle-batch.png"))
    first = page.locator("article.row .meta").first.inner_text()
    assert re.search(r"EW\(Hα\) −?\d+\.\d ± \d+\.\d Å", first), first  # what astronomers read
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("z")
    page.wait_for_selector("dialog#zoom[open]")
    page.screenshot(path=str(artifacts / "oracle-zoom-exemplars.png"))
    page.keyboard.press("Escape")
    page.locator("#filter").select_option("precision-sample")
    page.keyboard.press("w")
    assert page.locator("article.row").count() == len(world.sample_ids)
    page.screenshot(path=str(artifacts / "oracle-precision-sample-wide.png"))
    assert page.evaluate(f"alvo.byId.get({world.missing_file}).spectrum.error")
    # search: the two observations of one star
    page.locator("#filter").select_option("all")
    designation = page.evaluate(f"alvo.byId.get({world.query_ids[0]}).designation")
    page.locator("#search").fill(designation)
    assert page.locator("article.row").count() == 2
    page.locator("#search").fill("")
    # import: a CSV of verdicts, as TOPCAT would save it, for spectra outside the batch
    candidates = httpx.get(f"{url}/campaigns/be/batch?ROLE=candidate&LIMIT=2").json()["rows"]
    csv = "pubdid,label\n" + "".join(f"{row['pubdid']},bad\n" for row in candidates)
    page.locator("#import input[type=file]").set_input_files(
        {"name": "verdicts.csv", "mimeType": "text/csv", "buffer": csv.encode()}
    )
    page.locator("#import button").click()
    page.wait_for_selector("#notice:has-text('Imported 2 labels')")
    stored = httpx.get(f"{url}/campaigns/be/labels?FORMAT=json").json()["labels"]
    imported = {x["pubdid"] for x in stored if x["source"] == "csv" and x["label"] == "bad"}
    assert imported == {row["pubdid"] for row in candidates}
    assert page.errors == []
    context.close()


def test_label_a_full_batch_by_keyboard_reload_and_iterate(served, browser, artifacts):
    url, world = served
    context = browser.new_context(viewport=VIEWPORT)
    page = open_page(context, f"{url}/oracle/be")
    n = page.evaluate("alvo.rows.length")
    expected: dict[int, str] = {}
    for step in range(n):
        sid, pubdid, mine = page.evaluate(CURRENT)
        assert mine is None, "the page moves on to the next unlabelled row"
        truth = int(pubdid.rsplit("?", 1)[1])
        verdict = "bad" if sid == world.missing_file else CLASSES[world.kinds[truth]]
        if step == 3:  # a slip of the finger, taken back with u
            page.keyboard.press("4")
            assert page.evaluate(CURRENT)[0] != sid
            page.keyboard.press("u")
            assert page.evaluate(CURRENT) == [sid, pubdid, None]
        if step == 7:  # ... and with Ctrl-Z
            page.keyboard.press("5")
            page.keyboard.press("Control+z")
            assert page.evaluate(CURRENT) == [sid, pubdid, None]
        if step == 10:  # a reload mid-batch: the cursor comes back on the first unlabelled row
            page.wait_for_function("alvo.queue.length === 0")
            page.reload()
            page.wait_for_selector("body[data-ready='1']")
            assert page.evaluate("alvo.cursor") == step
            assert page.evaluate(CURRENT) == [sid, pubdid, None]
        if step == n - 8:  # the service becomes unreachable for the last labels
            page.route("**/campaigns/be/labels", lambda route: route.abort())
        page.keyboard.press(KEYS[verdict])
        expected[sid] = verdict
    assert len(expected) == n
    page.wait_for_function("alvo.queue.length >= 8")
    assert "not saved yet" in page.locator("#sync").inner_text()
    page.close()  # the tab is closed with 8 labels unsaved

    page = open_page(context, f"{url}/oracle/be")  # same browser profile, service reachable
    page.wait_for_function("alvo.queue.length === 0")
    assert page.locator("#sync").inner_text() == "all saved"
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    shown = dict(page.evaluate("alvo.rows.map(r => [r.id, r.mine])"))
    assert shown == expected
    assert page.locator("#count").inner_text() == f"{n} / {n} labelled ✓"
    stored = httpx.get(f"{url}/campaigns/be/labels?FORMAT=json").json()["labels"]
    ids = dict(page.evaluate("alvo.rows.map(r => [r.pubdid, r.id])"))
    mine = [x for x in stored if x["oracle_user"] == "" and x["source"] == "page"]
    latest = {ids[x["pubdid"]]: x["label"] for x in mine}
    assert latest == expected  # undone verdicts are gone from the service too
    # ben's wrong verdict on a spectrum now disagrees with ours: the page says so
    assert page.locator("article .others.conflict").count() == 1
    page.screenshot(path=str(artifacts / "oracle-batch-labelled.png"))

    # an iterate job started elsewhere (pyvo, alvo submit, the home page), long enough
    # to look at: a second one is refused, naming it ...
    long_job = {"CAMPAIGN": "be", "MODEL": "small", "EPOCHS": "500", "PATIENCE": "500"}
    job = httpx.post(f"{url}/iterate", data={**long_job, "PHASE": "RUN"}).headers["location"]
    second = httpx.post(f"{url}/iterate", data={"CAMPAIGN": "be", "PHASE": "RUN"})
    assert second.status_code == 409 and second.text.startswith("ITERATION_RUNNING"), second.text
    assert job.rsplit("/", 1)[1] in second.text
    # ... and a tab opened now (no localStorage of that job) finds it and follows it,
    # Start disabled, with the time since the job's own startTime
    elsewhere = browser.new_context(viewport=VIEWPORT)
    other = open_page(elsewhere, f"{url}/oracle/be")
    other.wait_for_function(f"alvo.followed === {json.dumps(job)}", timeout=10_000)
    other.wait_for_function("alvo.jobStatus && alvo.jobStatus.phase === 'EXECUTING'")
    assert other.locator("#iterate").is_disabled()
    other.wait_for_function("alvo.jobStatus.elapsed >= 3", timeout=30_000)
    other.reload()  # a reload shows the same time since the job's start, not 0
    other.wait_for_selector("body[data-ready='1']")
    other.wait_for_function("alvo.jobStatus && alvo.jobStatus.phase === 'EXECUTING'")
    start = re.search(r"<uws:startTime>([^<]+)<", httpx.get(job).text).group(1)
    began = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    truth = (dt.datetime.now(dt.UTC) - began).total_seconds()
    theirs = other.evaluate("alvo.jobStatus.elapsed")
    assert theirs >= 3 and abs(truth - theirs) < 2.5, (truth, theirs)
    httpx.post(f"{job}/phase", data={"PHASE": "ABORT"})
    other.wait_for_selector("#notice.warn:has-text('ABORTED')")
    assert not other.locator("#iterate").is_disabled()
    elsewhere.close()

    # the next iteration, from the page, followed live through UWS WAIT and jobInfo
    page.locator("details.advanced summary").click()
    page.locator("details.advanced select[name=MODEL]").select_option("small")
    page.locator("details.advanced input[name=EPOCHS]").fill("3")
    page.locator("#iterate").click()
    page.wait_for_selector("#job-state[data-phase='EXECUTING']", timeout=60_000)
    page.screenshot(path=str(artifacts / "oracle-iteration-running.png"))
    page.wait_for_selector("#job-state[data-phase='COMPLETED']", timeout=180_000)
    page.wait_for_function("alvo.doc.iteration === 1")
    rows = page.evaluate("alvo.rows.map(r => [r.id, r.mine, r.role])")
    assert rows and all(mine is None and sid not in expected for sid, mine, _ in rows)
    assert page.locator("#iteration").input_value() == "1"
    page.screenshot(path=str(artifacts / "oracle-next-batch.png"))

    overview = open_page(context, f"{url}/oracle")
    first = overview.locator("table.metrics tbody tr").first.inner_text()
    assert "%" in first, "iteration 0 is scored against the labels once iteration 1 ran"
    assert overview.locator("table.confusion").count() == 1
    overview.screenshot(path=str(artifacts / "oracle-overview.png"), full_page=True)
    assert page.errors == [] and overview.errors == []
    context.close()


def test_a_batch_says_what_it_is_and_what_the_oracle_can_do_when_nothing_is_uncertain(
    served, browser
):
    """A campaign whose network has no uncertain candidate left: its batch is the
    precision sample alone. The page says so, and offers a random absorption sample
    (PADDING), a spot-check of the candidates, or stopping -- with the campaign's
    stopping rule when the service gives one, and nothing of it when it does not."""
    import numpy as np

    from service.store.campaigns import Campaigns
    from tests.web_world import record_iteration

    url, world = served
    campaigns = Campaigns(world.settings)
    campaign = campaigns.create("done", "src", "pool", 100, "nothing uncertain left")
    ids = world.sample_ids[:3] + world.query_ids[:5]
    p = np.tile([0.97, 0.02, 0.01], (len(ids), 1))
    roles = np.array(["precision-sample"] * 3 + ["candidate"] * 5, dtype=object)
    record_iteration(campaigns, campaign, ids, p, roles, np.full(len(ids), "emission"), 8)
    context = browser.new_context(viewport=VIEWPORT)
    page = open_page(context, f"{url}/oracle/done")
    page.wait_for_selector("#converged")
    said = page.locator("#composition").inner_text()
    assert "0 the network is unsure of (query)" in said
    assert "3 drawn at random among its predicted emission (precision sample)" in said
    assert "no uncertain candidates left" in said and "predicts 8 spectra" in said
    # the service's own stopping rule on this iteration (issue 25), whatever it decided
    own = httpx.get(f"{url}/campaigns/done").json()["stopping"]
    page.wait_for_selector("#stopping")
    assert own["reason"] in page.locator("#stopping").inner_text()
    # the stopping rule, when GET /campaigns/{name} carries one (issue 25's)
    stopping = {"stop": True, "reason": "no emission star in the last 60 absorption checks",
                "evidence": {"absorption_checked": 60, "missed_upper_95": 0.049}}  # fmt: skip
    page.route(
        "**/campaigns/done",
        lambda route: route.fulfill(json={"name": "done", "stopping": stopping}),
    )
    page.reload()
    page.wait_for_selector("#stopping")
    rule = page.locator("#stopping").inner_text()
    assert "Stopping rule: stop." in rule and "60 absorption checks" in rule
    assert "missed upper 95: 0.049" in rule
    # a random absorption sample of a stated size is the next iteration's PADDING
    posted: list[str] = []

    def refuse(route):
        posted.append(route.request.post_data or "")
        route.fulfill(status=400, body="BAD_PARAMETER: not in this test")

    page.route("**/iterate", refuse)
    page.locator("#absorption-sample").click()
    page.wait_for_selector("#notice.warn")
    assert posted and "PADDING=20" in posted[0] and "CAMPAIGN=done" in posted[0]
    page.locator("#spot-check").click()
    page.wait_for_function("alvo.filter === 'candidates' && alvo.rows.length === 5")
    assert page.errors == []
    context.close()


def test_one_cursor_messages_in_the_header_undo_after_reload_and_narrow(served, browser, artifacts):
    """Runs after the full-batch test: the page opens on the iteration that test started."""
    from tests.peers.axe import axe_script, violations

    url, _world = served
    context = browser.new_context(viewport=VIEWPORT)
    page = open_page(context, f"{url}/oracle/be")
    # / goes to the search box, Esc comes back to the rows, and the keys work again
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.type("J")
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.id") == "rows"
    before = page.evaluate("alvo.cursor")
    page.keyboard.press("j")
    assert page.evaluate("alvo.cursor") == before + 1
    page.locator("#search").fill("")
    # Tab focus and the selected row are one cursor
    third = page.evaluate("alvo.rows[alvo.view[2]].id")
    page.locator(f"#row-{third} .vbtn").first.focus()
    assert page.evaluate(CURRENT)[0] == third
    assert page.get_attribute("#rows", "aria-activedescendant") == f"row-{third}"
    # a verdict, then a reload: u still takes it back (here and on the service)
    page.keyboard.press("3")
    page.wait_for_function("alvo.queue.length === 0")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.evaluate(f"alvo.byId.get({third}).mine") == "absorption"
    page.keyboard.press("u")
    page.wait_for_function("alvo.queue.length === 0")
    assert page.evaluate(f"alvo.byId.get({third}).mine") is None
    stored = httpx.get(f"{url}/campaigns/be/labels?FORMAT=json").json()["labels"]
    pubdid = page.evaluate(f"alvo.byId.get({third}).pubdid")
    assert not [x for x in stored if x["pubdid"] == pubdid and x["oracle_user"] == ""]
    # a verdict the service refuses: taken back, and said in the sticky header until dismissed
    page.route(
        "**/campaigns/be/labels",
        lambda route: route.fulfill(
            status=400, content_type="application/json", body='{"error": "no such spectrum"}'
        ),
    )
    refused_id = page.evaluate(CURRENT)[0]
    page.keyboard.press("2")
    page.wait_for_selector("#notice.warn:has-text('no such spectrum')")
    assert page.evaluate(f"alvo.byId.get({refused_id}).mine") is None
    # the row re-renders after the notice: wait for it (Playwright retries until a deadline)
    page.wait_for_function(
        f"document.querySelector('#row-{refused_id} .verdict').textContent.includes('not labelled')"
    )
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    box = page.locator("#notice").bounding_box()
    assert box is not None and 0 <= box["y"] < VIEWPORT["height"] / 3  # in the sticky header
    page.screenshot(path=str(artifacts / "oracle-refused-notice.png"))
    page.keyboard.press("Escape")
    assert page.locator("#notice").is_hidden()
    page.unroute("**/campaigns/be/labels")
    page.keyboard.press("4")  # a "not sure" badge on the page for axe (it was 4.39:1)
    page.wait_for_selector("article .verdict.not-sure")
    found = violations(page, axe_script())
    assert found == [], found
    context.close()

    narrow = browser.new_context(viewport={"width": 420, "height": 900})
    page = open_page(narrow, f"{url}/oracle/be")
    # no sideways scroll once the page has laid out its rows (fails if it never fits)
    page.wait_for_function("document.documentElement.scrollWidth <= 420", timeout=10_000)
    header = page.locator("header.bar").bounding_box()
    assert header is not None and header["height"] < 60, header  # one line (it was 435 px)
    page.screenshot(path=str(artifacts / "oracle-batch-420px.png"))
    assert violations(page, axe_script()) == []
    page.locator("#bar-more").click()  # the rest of the header, on demand
    assert page.locator("#tools").is_visible() and page.locator("#filter").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    assert violations(page, axe_script()) == []
    page.screenshot(path=str(artifacts / "oracle-batch-420px-open.png"))
    overview = open_page(narrow, f"{url}/oracle")
    assert overview.evaluate("document.documentElement.scrollWidth") <= 420
    home = open_page(narrow, f"{url}/")
    assert home.evaluate("document.documentElement.scrollWidth") <= 420
    home.screenshot(path=str(artifacts / "home-420px.png"), full_page=True)
    narrow.close()


def scripted_job(phase: str, results: dict[str, str]) -> str:
    listed = "".join(
        f'<uws:result id="{name}" xlink:href="{href}"/>' for name, href in results.items()
    )
    return (
        '<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" '
        'xmlns:xlink="http://www.w3.org/1999/xlink"><uws:jobId>j</uws:jobId>'
        f"<uws:phase>{phase}</uws:phase><uws:results>{listed}</uws:results></uws:job>"
    )


FAILURES = """<?xml version="1.0"?><VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3"
version="1.4"><RESOURCE type="results"><TABLE name="failures">
<FIELD name="reference" datatype="char" arraysize="*"/><FIELD name="pubdid" datatype="char"
arraysize="*"/><FIELD name="reason" datatype="char" arraysize="*"/><FIELD name="detail"
datatype="char" arraysize="*"/><DATA><TABLEDATA>
<TR><TD>http://a/1.fits</TD><TD>ivo://t/a?1</TD><TD>CORRUPT_FITS</TD><TD>truncated</TD></TR>
<TR><TD>http://a/2.fits</TD><TD>ivo://t/a?2</TD><TD>NO_HALPHA_COVERAGE</TD><TD>blue arm</TD></TR>
<TR><TD>http://a/3.fits</TD><TD>ivo://t/a?3</TD><TD>CORRUPT_FITS</TD><TD>not FITS</TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"""


def test_no_dead_ends_for_a_browser(served, browser):
    """Unknown paths, /tap and /uws, the UWS job lists and jobs, ingest failures: a
    person in a browser always gets a page with a way on, clients the same answers."""
    url, _world = served
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    # an unknown path: an HTML page with a way back for a browser, bare text for curl
    response = page.goto(f"{url}/docs")
    assert response.status == 404 and page.locator("h1").inner_text() == "Nothing here"
    assert page.locator("main a[href='/']").count() >= 1
    plain = httpx.get(f"{url}/docs")
    assert plain.status_code == 404 and plain.text == "Not Found"
    # /tap and /uws: landings with links that work
    assert page.goto(f"{url}/tap").status == 200
    assert "TAP" in page.locator("h1").inner_text()
    page.locator("a[href='tap/tables']").click()
    page.wait_for_load_state()
    assert page.url.endswith("/tap/tables")
    assert page.goto(f"{url}/uws").status == 200
    page.locator("a[href='train']").first.click()
    page.wait_for_selector("h1:has-text('UWS job list')")  # the XML through its XSLT
    # a job (created, not run) opens as a table with its parameters, for a person;
    # the same URL gives pyvo and curl the same UWS XML, which names the stylesheet
    job = httpx.post(f"{url}/train", data={"DATASET": "src"}).headers["location"]
    page.goto(f"{url}/train")
    page.locator(f"a[href='{job}']").click()
    page.wait_for_selector("h1:has-text('PENDING')")
    assert page.locator("th:has-text('dataset') + td").inner_text() == "src"
    document = httpx.get(job).text
    assert '<?xml-stylesheet type="text/xsl"' in document and "<uws:job " in document
    assert httpx.get(f"{url}/uws.xsl").headers["content-type"].startswith("text/xsl")
    httpx.delete(job)
    # ingest failures with their reasons stay listed on the home page after the job
    page.route(
        "**/scripted/ingest-*",
        lambda route: route.fulfill(
            content_type="text/xml",
            body=scripted_job("COMPLETED", {"failures": f"{url}/scripted/failures.vot"}),
        ),
    )
    page.route("**/scripted/failures.vot", lambda route: route.fulfill(body=FAILURES))
    page.route(
        "**/scripted/iterate-1",
        lambda route: route.fulfill(content_type="text/xml", body=scripted_job("COMPLETED", {})),
    )
    run = {
        "campaign": "scripted",
        "jobs": [
            {"step": "source", "url": f"{url}/scripted/ingest-1"},
            {"step": "pool", "url": f"{url}/scripted/ingest-2"},
            {"step": "iterate", "url": f"{url}/scripted/iterate-1"},
        ],
        "iterate": {},
    }
    page.goto(f"{url}/")
    page.evaluate(f"localStorage.setItem('alvo-home:run', {json.dumps(json.dumps(run))})")
    page.reload()
    page.wait_for_selector("#open-batch")  # the run completed ...
    listed = page.locator("#failures-0 summary").inner_text()  # ... and its failures stay
    assert listed == "3 spectra left out: 2 CORRUPT_FITS, 1 NO_HALPHA_COVERAGE"
    page.locator("#failures-0 summary").click()
    assert page.locator("#failures-0 tbody tr").count() == 3
    assert "truncated" in page.locator("#failures-0 tbody").inner_text()
    context.close()


def test_a_label_post_left_unanswered_is_sent_again(served, browser):
    """The page sends its queued labels one POST at a time and awaited each with no
    time limit: a request that was never answered (a proxy that holds it, a connection
    dropped without a reset) kept every later label unsent for good. A label POST with
    no answer within ``alvo.postTimeoutMs`` is now sent again; the service stores a
    repeated label once ("unchanged"). Here the first POST is held forever."""
    url, _world = served
    context = browser.new_context(viewport=VIEWPORT)
    page = open_page(context, f"{url}/oracle/be")
    page.evaluate("alvo.postTimeoutMs = 1500")
    held: list = []
    page.route(
        "**/campaigns/be/labels",
        lambda route: held.append(route) if not held else route.continue_(),
    )
    sid, pubdid, mine = page.evaluate(CURRENT)
    verdict = "double-peak" if mine != "double-peak" else "absorption"
    page.keyboard.press(KEYS[verdict])
    page.wait_for_function("alvo.queue.length === 0 && !alvo.sending", timeout=30_000)
    assert len(held) == 1  # the first try was held, a second one went through
    stored = httpx.get(f"{url}/campaigns/be/labels?FORMAT=json").json()["labels"]
    mine_now = [x["label"] for x in stored if x["pubdid"] == pubdid and x["oracle_user"] == ""]
    assert mine_now and mine_now[-1] == verdict, (sid, mine_now)
    context.close()

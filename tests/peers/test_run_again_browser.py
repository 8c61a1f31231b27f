"""The "Run again" form in a real browser: the old values shown, one edited, a new job linked."""

from __future__ import annotations

import httpx

from service.app import create_app
from service.net.uws_client import job_status
from service.settings import Settings
from tests.test_submit import REFS
from tests.vo_fixture import free_port, live_server
from tests.web_world import chromium


def test_run_again_form_in_chromium(tmp_path):
    port = free_port()
    settings = Settings(home=tmp_path / "home", port=port, demo_archive_size=0)
    with live_server(create_app(settings), port, lifespan="on") as url, chromium() as browser:
        created = httpx.post(
            f"{url}/ingest",
            data={"DATASET": "mine", "UPLOAD": "refs,param:refs", "PHASE": "RUN"},
            files={"refs": ("refs.vot", REFS)},
        )
        assert created.status_code == 303, created.text
        old = created.headers["location"]
        page = browser.new_page()
        page.goto(old + "/again")
        field = page.locator('input[name="DATASET"]')
        assert field.input_value() == "mine"  # the old value is shown
        assert "UPLOAD=refs,param:refs" in page.locator("form").inner_text()
        field.fill("edited")
        with page.expect_navigation():
            page.click("button[type=submit]")
        new = page.url
        assert new.startswith(f"{url}/ingest/") and new != old
        status = job_status(new, httpx.get(new).content)
        assert status.parent == old
        body = httpx.get(new + "/parameters").text
        assert ">edited<" in body and ">refs,param:refs<" in body

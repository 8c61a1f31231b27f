"""Run again: ``POST {job}/again`` makes a new job from an old one's parameters, linked to it.

Black box over HTTP against the example app (SQLite, local executor); every job
document is validated against the UWS 1.1 schema by the client hook, and pyvo
parses the new job.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from pyvo.io import uws as pyvo_uws

from tests.uws.conftest import LiveServer, client, parse
from tests.uws.helpers import create, job, parameters, wait_final

JOBINFO = "{urn:x-uws:jobinfo}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("again")
    live = LiveServer(f"sqlite:///{root / 'uws.sqlite'}", "local", root / "work").start()
    yield live
    live.stop()


def test_a_finished_job_runs_again_with_edited_parameters(server: LiveServer, uws_schema) -> None:
    with client(server, uws_schema) as http:
        old = create(
            http,
            TASK="echo",
            PHASE="RUN",
            RUNID="first",
            note="old",
            keep="same",
            files={"refs": ("refs.txt", b"the table")},
        )
        wait_final(http, old)
        response = http.post(old + "/again", data={"NOTE": "new", "PHASE": "RUN"})
        assert response.status_code == 303, response.text
        new = response.headers["location"]
        assert new != old and new.rsplit("/", 1)[0] == old.rsplit("/", 1)[0]
        document = wait_final(http, new)
        parent = document.find(
            f"uws:jobInfo/{JOBINFO}parent", {"uws": "http://www.ivoa.net/xml/UWS/v1.0"}
        )
        assert parent is not None, "the new job's jobInfo names no parent"
        assert parent.get("jobId") == old.rsplit("/", 1)[1]
        assert parent.get("href") == old
        values = dict(parameters(document))
        assert values["note"] == "new" and values["keep"] == "same"
        assert values["upload"] == "refs,param:refs"
        copied = http.get(new + "/results/upload-refs")
        assert copied.status_code == 200 and copied.content == b"the table"  # file copied
        parsed = pyvo_uws.parse_job(io.BytesIO(http.get(new).content))
        assert parsed.phase == "COMPLETED" and parsed.runid == "first"
        # the parent stays as it was and names no parent itself
        assert parse(http.get(old).content).find(f".//{JOBINFO}parent") is None
        assert dict(parameters(job(http, old)))["note"] == "old"


def test_run_again_refuses_bad_values_and_unknown_jobs(server: LiveServer, uws_schema) -> None:
    with client(server, uws_schema) as http:
        old = create(http, TASK="echo", PHASE="RUN")
        wait_final(http, old)
        assert http.post(old + "/again", data={"TASK": "nonsense"}).status_code == 400
        assert http.post(old + "/again", data={"PHASE": "ABORT"}).status_code == 400
        assert http.post("/demo/0000000000000000/again", data={}).status_code == 404
        pending = http.post(old + "/again", data={"TASK": "echo"})  # no PHASE: stays PENDING
        assert pending.status_code == 303
        assert (
            parse(http.get(pending.headers["location"]).content).findtext(
                "{http://www.ivoa.net/xml/UWS/v1.0}phase"
            )
            == "PENDING"
        )


def test_run_again_form_shows_the_old_values(server: LiveServer, uws_schema) -> None:
    with client(server, uws_schema) as http:
        old = create(http, TASK="echo", PHASE="RUN", note="a <b> & c")
        wait_final(http, old)
        page = http.get(old + "/again")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'name="NOTE" value="a &lt;b&gt; &amp; c"' in page.text
        assert f'action="{old}/again"' in page.text

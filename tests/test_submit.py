"""``alvo submit`` finds the service the way ``alvo serve`` does and attaches local files."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree

from service.app import create_app
from service.cli import main
from service.settings import Settings
from tests.vo_fixture import free_port, live_server

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
REFS = b"""<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE type="results">
<TABLE><FIELD name="access_url" datatype="char" arraysize="*" ucd="meta.ref.url"/>
<DATA><TABLEDATA><TR><TD>http://127.0.0.1:9/none.fits</TD></TR></TABLEDATA></DATA>
</TABLE></RESOURCE></VOTABLE>"""


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A live service found through ``ALVO_PORT`` alone, and a local file to upload."""
    port = free_port()
    settings = Settings(home=tmp_path / "home", port=port, demo_archive_size=0)
    refs = tmp_path / "my-stars.vot"
    refs.write_bytes(REFS)
    monkeypatch.setenv("ALVO_PORT", str(port))
    monkeypatch.delenv("ALVO_BASE_URL", raising=False)
    with live_server(create_app(settings), port, lifespan="on") as url:
        yield url, refs


def test_submit_reads_alvo_port_and_uploads_a_file(served, capsys):
    url, refs = served
    code = main(["submit", "ingest", "DATASET=mine", f"UPLOAD=refs,@{refs}", "--no-wait"])
    assert code == 0
    job_url = capsys.readouterr().out.strip().splitlines()[-1]
    assert job_url.startswith(f"{url}/ingest/")  # no --service: ALVO_PORT found it
    job = etree.fromstring(httpx.get(job_url).content)
    upload = next(p for p in job.iter(f"{UWS}parameter") if p.get("id").upper() == "UPLOAD")
    assert upload.text == "refs,param:refs"  # the part was there, or the job was refused


def test_submit_prefers_alvo_base_url(monkeypatch):
    from service.commands.submit import service_url

    monkeypatch.setenv("ALVO_PORT", "9999")
    monkeypatch.setenv("ALVO_BASE_URL", "https://alvo.example.org/vo/")
    assert service_url(None) == "https://alvo.example.org/vo"
    assert service_url("http://elsewhere:1/") == "http://elsewhere:1"
    monkeypatch.delenv("ALVO_BASE_URL")
    assert service_url(None) == "http://127.0.0.1:9999"


def test_submit_again_runs_a_job_again_with_edited_parameters(served, capsys):
    """``alvo submit --again LIST/ID NAME=VALUE``: a new job, the old parameters with the
    given ones replaced, the upload copied, and jobInfo naming the parent (pyvo reads it)."""
    import io

    from pyvo.io import uws as pyvo_uws

    from service.net.uws_client import job_status

    url, refs = served
    assert main(["submit", "ingest", "DATASET=mine", f"UPLOAD=refs,@{refs}", "--no-wait"]) == 0
    old = capsys.readouterr().out.strip().splitlines()[-1]
    job_id = old.rsplit("/", 1)[1]
    assert main(["submit", "--again", f"ingest/{job_id}", "DATASET=theirs", "--no-wait"]) == 0
    new = capsys.readouterr().out.strip().splitlines()[-1]
    assert new.startswith(f"{url}/ingest/") and new != old
    document = httpx.get(new).content
    assert job_status(new, document).parent == old
    parsed = pyvo_uws.parse_job(io.BytesIO(document))
    values = {p.id_.upper(): p.content for p in parsed.parameters}
    assert values["DATASET"] == "theirs"
    assert values["UPLOAD"] == "refs,param:refs"  # the old job's file went with it
    assert main(["submit", "--again", f"ingest/{'0' * 16}", "--no-wait"]) == 1

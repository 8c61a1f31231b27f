"""The service skeleton answers on its landing page and VOSI endpoints."""

from __future__ import annotations

from lxml import etree
from starlette.testclient import TestClient

from service.app import create_app
from service.settings import Settings


def test_landing_page_is_the_campaigns_home(tmp_path):
    """Relative links (the page also works under a proxy's prefix), the start form with
    the demo archive preselected, and the stylesheet of the other pages."""
    client = TestClient(create_app(Settings(home=tmp_path)))
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="availability"' in page.text
    assert 'href="oracle-static/oracle.css"' in page.text
    assert '<form id="start-form"' in page.text
    assert 'name="source-kind" value="demo" checked' in page.text
    assert 'name="pool-kind" value="demo" checked' in page.text


VOSI = "{http://www.ivoa.net/xml/VOSIAvailability/v1.0}"


def _availability(client, path="/availability") -> tuple[str, str]:
    response = client.get(path)
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    assert root.tag == f"{VOSI}availability"
    return root.findtext(f"{VOSI}available"), root.findtext(f"{VOSI}note")


def test_availability_is_vosi(tmp_path):
    with TestClient(create_app(Settings(home=tmp_path))) as client:
        available, note = _availability(client)
        assert available == "true" and "database answering" in note
        assert _availability(client, "/tap/availability")[0] == "true"
        client.app.state.uws.executor.close()  # the job executor stops: no jobs can run
        available, note = _availability(client)
        assert available == "false" and "executor" in note


def test_availability_is_false_without_the_database(tmp_path):
    """Issue 15: availability said true whatever the state of the database."""
    settings = Settings(home=tmp_path, database_url="postgresql+psycopg://alvo@127.0.0.1:1/none")
    client = TestClient(create_app(settings))
    for path in ("/availability", "/tap/availability"):
        available, note = _availability(client, path)
        assert available == "false" and note.startswith("database unreachable"), note


def test_settings_from_environment():
    settings = Settings.from_env({"ALVO_PORT": "9123", "ALVO_EXECUTOR": "dask"})
    assert settings.port == 9123 and settings.executor == "dask"
    assert settings.public_url == "http://127.0.0.1:9123"


def test_deploy_recipes_name_only_real_settings():
    """Every ALVO_* variable in deploy/ and the README is a Settings field (no stale names)."""
    import dataclasses
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    fields = {f"ALVO_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    texts = [p.read_text() for p in (root / "deploy").rglob("*") if p.is_file()]
    texts.append((root / "README.md").read_text())
    used = {name for text in texts for name in re.findall(r"ALVO_[A-Z_]+", text)}
    assert used and used <= fields, used - fields


def test_capabilities_list_every_protocol_with_valid_namespaces(tmp_path):
    client = TestClient(create_app(Settings(home=tmp_path)))
    root = etree.fromstring(client.get("/capabilities").content)
    standards = {cap.get("standardID") for cap in root.iter("capability")}
    assert {
        "ivo://ivoa.net/std/SSA",
        "ivo://ivoa.net/std/DataLink#links-1.1",
        "ivo://ivoa.net/std/TAP",
        "ivo://ivoa.net/std/UWS",
    } <= standards
    xsi_type = next(root.iter("interface")).get("{http://www.w3.org/2001/XMLSchema-instance}type")
    prefix = xsi_type.split(":")[0]
    assert root.nsmap[prefix] == "http://www.ivoa.net/xml/VODataService/v1.1"

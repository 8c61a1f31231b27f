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


def test_availability_is_vosi(tmp_path):
    client = TestClient(create_app(Settings(home=tmp_path)))
    response = client.get("/availability")
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    assert root.tag == "{http://www.ivoa.net/xml/VOSIAvailability/v1.0}availability"
    assert root.findtext("{http://www.ivoa.net/xml/VOSIAvailability/v1.0}available") == "true"


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

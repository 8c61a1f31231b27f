"""The service skeleton answers on its landing page and VOSI endpoints."""

from __future__ import annotations

from lxml import etree
from starlette.testclient import TestClient

from service.app import create_app
from service.settings import Settings


def test_landing_page_links_vosi(tmp_path):
    client = TestClient(create_app(Settings(home=tmp_path)))
    page = client.get("/")
    assert page.status_code == 200
    assert "/availability" in page.text


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

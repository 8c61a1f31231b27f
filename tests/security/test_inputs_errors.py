"""One error model: every refusal a named reason with its HTTP status, a bug a bare 500."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from service.http.errors import json_errors
from service.reasons import AlvoError, Reason
from service.vo import dali
from tests.security.inputs_world import TRACEBACK_MARKS

REPO = Path(__file__).resolve().parents[2]
STATUSES = {400, 401, 403, 404, 409, 413, 414, 431, 500, 502, 503, 504, 507}  # 503: retry after


def test_every_reason_has_a_status_a_client_can_act_on():
    assert {reason.http_status for reason in Reason} <= STATUSES
    assert Reason.UNKNOWN_CAMPAIGN.http_status == 404
    assert Reason.BODY_TOO_LARGE.http_status == 413
    assert Reason.NAME_IN_USE.http_status == 409
    assert AlvoError(Reason.UNKNOWN_CAMPAIGN, "x").status == 404
    assert AlvoError(Reason.BAD_PARAMETER).detail == Reason.BAD_PARAMETER.explanation


def test_the_reasons_uws_names_are_reasons_of_the_service():
    """uws stays independent of alvo, so its refusals carry reason names as text."""
    named = set()
    for path in (REPO / "uws").glob("*.py"):
        named |= set(re.findall(r'reason\s*=\s*"([A-Z_]+)"', path.read_text()))
    assert named, "uws names no reasons"
    assert named <= {reason.code for reason in Reason}


@pytest.mark.parametrize(
    "module", ["service/store/campaigns.py", "service/store/datasets.py", "service/web/api.py"]
)
def test_campaigns_datasets_and_the_api_raise_only_named_reasons(module):
    tree = ast.parse((REPO / module).read_text())
    bare = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Raise)
        and isinstance(node.exc, ast.Call)
        and getattr(node.exc.func, "id", "") in ("ValueError", "LookupError", "KeyError")
    ]
    assert bare == [], f"{module} raises bare exceptions at lines {bare}"


def _failing(error: Exception):  # type: ignore[no-untyped-def]
    async def handler(request):  # type: ignore[no-untyped-def]
        raise error

    return handler


def _client(wrap) -> TestClient:  # type: ignore[no-untyped-def]
    routes = [
        Route("/refused", wrap(_failing(AlvoError(Reason.UNKNOWN_CAMPAIGN, "make it first")))),
        Route("/bug", wrap(_failing(ZeroDivisionError("secret /srv/path")))),
        Route("/deep", wrap(_failing(RecursionError("maximum recursion depth exceeded")))),
    ]
    return TestClient(Starlette(routes=routes), raise_server_exceptions=False)


def test_json_refusals_carry_reason_status_and_remedy():
    response = _client(json_errors).get("/refused")
    assert response.status_code == 404
    assert response.json() == {
        "error": "UNKNOWN_CAMPAIGN: make it first",
        "reason": "UNKNOWN_CAMPAIGN",
        "detail": "make it first",
    }


def test_dali_refusals_are_error_documents_with_the_reasons_status():
    response = _client(dali.endpoint).get("/refused")
    assert response.status_code == 404
    assert 'value="ERROR"' in response.text and "UNKNOWN_CAMPAIGN: make it first" in response.text


@pytest.mark.parametrize("wrap", [json_errors, dali.endpoint], ids=["json", "dali"])
def test_a_bug_is_a_500_that_shows_nothing_of_the_insides(wrap, caplog):
    client = _client(wrap)
    response = client.get("/bug")
    assert response.status_code == 500 and "INTERNAL_ERROR" in response.text
    assert "secret" not in response.text and "ZeroDivisionError" not in response.text
    assert not any(mark in response.text for mark in TRACEBACK_MARKS)
    assert "Traceback" in caplog.text  # the operator still gets it
    caplog.clear()
    deep = client.get("/deep")
    assert deep.status_code == 500 and len(caplog.text) < 2000  # no thousand frames logged

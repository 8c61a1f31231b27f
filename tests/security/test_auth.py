"""Who may change what with ALVO_AUTH=header, and which pages may make a browser write.

Issue 12 found, behind an authenticating proxy: anonymous callers created jobs,
campaigns and labels; user B labelled A's campaign, started A's iterations and
appended to A's dataset; error messages listed every dataset; three identity
headers were trusted (first wins); and the CSRF guard trusted the request's
own Host header (DNS rebinding) and ignored ``Sec-Fetch-Site``. Each case is a
test here. The desktop default (``auth=anonymous``) keeps working as before.
"""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from service.app import create_app
from service.http.origin import trusted_origins
from service.settings import Settings
from service.store import migrations, schema
from service.store.datasets import Datasets

ANA, BEN, CARL = ({"X-Forwarded-User": name} for name in ("ana", "ben", "carl"))
LABEL = {"labels": [{"pubdid": "ivo://t/pool?0", "label": "single-peak"}]}


def fill(settings: Settings, owner: str | None) -> None:
    datasets = Datasets(settings)
    for name, domain in (("src", "source"), ("pool", "target")):
        dataset = datasets.open_or_create(name, domain, owner=owner)
        rows = {"pubdid": [f"ivo://t/{name}?{i}" for i in range(3)]}
        datasets.append(dataset, np.zeros((3, 140), np.float32), rows, ["absorption"] * 3)


@pytest.fixture
def shared(tmp_path):
    """A service behind a proxy: ana owns the datasets and campaign 'be' (carl is an oracle)."""
    settings = Settings(home=tmp_path, auth="header", demo_archive_size=0)
    fill(settings, "ana")
    with TestClient(create_app(settings), follow_redirects=False) as client:
        campaign = {"name": "be", "source": "src", "target": "pool", "oracles": "carl"}
        assert client.post("/campaigns", json=campaign, headers=ANA).status_code == 201
        yield client


def jobs(client: TestClient, job_list: str, who: dict[str, str]) -> int:
    return client.get(f"/{job_list}", headers=who).text.count("<uws:jobref")


def test_anonymous_callers_may_read_but_change_nothing(shared):
    for path, kwargs in (
        ("/ingest", {"data": {"DATASET": "mine", "URL": "http://x.example/a.fits"}}),
        ("/iterate", {"data": {"CAMPAIGN": "be"}}),
        ("/tap/async", {"data": {"LANG": "ADQL", "QUERY": "SELECT 1 FROM alvo.dataset"}}),
        ("/campaigns", {"json": {"name": "x", "source": "src", "target": "pool"}}),
        ("/campaigns/be/labels", {"json": LABEL}),
        ("/campaigns/be/labels/undo", {"json": {"spectrum_id": 1}}),
    ):
        refused = shared.post(path, **kwargs)
        assert refused.status_code == 401, (path, refused.text)
        assert refused.text.startswith("SIGN_IN_REQUIRED")
    assert shared.get("/campaigns").json() == {"campaigns": ["be"]}
    assert shared.get("/campaigns/be/labels").json() == {"labels": []}
    assert jobs(shared, "ingest", {}) == 0
    query = {"LANG": "ADQL", "QUERY": "SELECT name FROM alvo.dataset", "FORMAT": "csv"}
    assert shared.post("/tap/sync", data=query).status_code == 200  # a query changes nothing


def test_only_one_identity_header_is_trusted(shared, tmp_path):
    campaign = {"name": "x", "source": "src", "target": "pool"}
    for header in ("X-Remote-User", "Remote-User", "X-User"):  # proxies do not strip these
        assert shared.post("/campaigns", json=campaign, headers={header: "ana"}).status_code == 401
    (tmp_path / "other").mkdir()
    settings = Settings(home=tmp_path / "other", auth="header", auth_header="X-Auth-Request-User")
    fill(settings, None)
    with TestClient(create_app(settings)) as client:
        assert client.post("/campaigns", json=campaign, headers=ANA).status_code == 401
        mine = {"X-Auth-Request-User": "ana"}
        assert client.post("/campaigns", json=campaign, headers=mine).status_code == 201


def test_labels_come_from_the_owner_and_invited_oracles_only(shared):
    refused = shared.post("/campaigns/be/labels", json=LABEL, headers=BEN)
    assert refused.status_code == 403 and "NOT_YOURS" in refused.json()["error"]
    assert shared.get("/campaigns/be/labels").json() == {"labels": []}
    assert shared.post("/campaigns/be/labels", json=LABEL, headers=CARL).json()["stored"] == 1
    assert shared.post("/campaigns/be/labels", json=LABEL, headers=ANA).json()["stored"] == 1
    undo = shared.post("/campaigns/be/labels/undo", json={"spectrum_id": 4}, headers=BEN)
    assert undo.status_code == 403
    users = [x["oracle_user"] for x in shared.get("/campaigns/be/labels").json()["labels"]]
    assert users == ["carl", "ana"]


def test_only_the_owner_runs_a_campaigns_iterations(shared):
    refused = shared.post("/iterate", data={"CAMPAIGN": "be", "PHASE": "RUN"}, headers=BEN)
    assert refused.status_code == 403 and "NOT_YOURS" in refused.text
    assert jobs(shared, "iterate", BEN) == 0
    oracle = shared.post("/iterate", data={"CAMPAIGN": "be"}, headers=CARL)  # labels, not runs
    assert oracle.status_code == 403
    assert shared.post("/iterate", data={"CAMPAIGN": "be"}, headers=ANA).status_code == 303


def test_only_the_owner_adds_to_a_dataset_which_others_may_read(shared):
    ingest = {"DATASET": "pool", "URL": "http://x.example/a.fits"}
    refused = shared.post("/ingest", data=ingest, headers=BEN)
    assert refused.status_code == 403 and "NOT_YOURS" in refused.text
    assert jobs(shared, "ingest", BEN) == 0
    assert shared.post("/ingest", data=ingest, headers=ANA).status_code == 303
    assert (
        shared.post("/ingest", data={**ingest, "DATASET": "bens"}, headers=BEN).status_code == 303
    )
    # shared read-only: ben builds his own campaign on ana's datasets
    campaign = {"name": "bens-be", "source": "src", "target": "pool"}
    assert shared.post("/campaigns", json=campaign, headers=BEN).status_code == 201
    # the runner checks again: the dataset may have appeared after the job was created
    datasets = Datasets(Settings(home=shared.app.state.settings.home, auth="header"))
    with pytest.raises(PermissionError, match="NOT_YOURS"):
        datasets.open_or_create("pool", "target", owner="ben")
    assert datasets.open_or_create("pool", "target", owner="ana").name == "pool"


def test_a_miss_does_not_list_what_others_have(shared):
    missing = shared.post(
        "/campaigns", json={"name": "y", "source": "nope", "target": "pool"}, headers=BEN
    )
    assert missing.status_code == 404
    assert "src" not in missing.text and "pool" not in missing.text
    unknown = shared.get("/campaigns/nope/performance", headers=BEN)
    assert unknown.status_code == 404 and "be" not in unknown.json()["error"].split("'nope'")[1]


def test_the_desktop_default_stays_open_and_helpful(tmp_path):
    settings = Settings(home=tmp_path, demo_archive_size=0)  # auth=anonymous
    fill(settings, None)
    with TestClient(create_app(settings)) as client:
        campaign = {"name": "be", "source": "src", "target": "pool"}
        assert client.post("/campaigns", json=campaign).status_code == 201
        assert client.post("/campaigns/be/labels", json=LABEL).json()["stored"] == 1
        missing = client.post("/campaigns", json={**campaign, "name": "y", "source": "nope"})
        assert "known: pool, src" in missing.json()["error"]


def test_older_databases_gain_the_owner_columns(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    schema.create_all(engine)
    with engine.begin() as conn:  # as a release before owners left it: no revision recorded
        for table, column in (("dataset", "owner"), ("campaign", "owner"), ("campaign", "oracles")):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.exec_driver_sql(f"DROP TABLE {migrations.VERSION_TABLE}")
    schema.create_all(engine)
    columns = {
        t: {c["name"] for c in sa.inspect(engine).get_columns(t)} for t in ("dataset", "campaign")
    }
    assert {"owner"} <= columns["dataset"] and {"owner", "oracles"} <= columns["campaign"]


# --- which pages may make a browser write ------------------------------------------------------


def test_trusted_origins_come_from_the_configuration():
    desktop = trusted_origins("http://127.0.0.1:8000", "127.0.0.1", 8000)
    assert desktop == {"http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"}
    proxied = trusted_origins("https://alvo.example.org:443/vo", "10.0.0.5", 8000)
    assert proxied == {"https://alvo.example.org"}  # bound elsewhere: no loopback names


@pytest.fixture
def desktop(tmp_path):
    settings = Settings(home=tmp_path, demo_archive_size=0)
    fill(settings, None)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        assert client.post("/campaigns", json={"name": "be", "source": "src", "target": "pool"})
        yield client


def test_dns_rebinding_host_does_not_make_a_page_same_origin(desktop):
    rebound = {"Host": "evil.example:8000", "Origin": "http://evil.example:8000"}
    refused = desktop.post("/campaigns/be/labels", json=LABEL, headers=rebound)
    assert refused.status_code == 403 and "evil.example" in refused.text
    assert desktop.post("/ingest", data={"DATASET": "x"}, headers=rebound).status_code == 403
    assert desktop.get("/campaigns/be/labels").json() == {"labels": []}


def test_sec_fetch_site_cross_site_is_refused_without_origin(desktop):
    for site in ("cross-site", "same-site"):  # same-site: another port of localhost
        refused = desktop.post("/campaigns/be/labels", json=LABEL, headers={"Sec-Fetch-Site": site})
        assert refused.status_code == 403, site
    assert desktop.get("/campaigns/be/labels").json() == {"labels": []}


def test_own_pages_and_vo_clients_still_write(desktop):
    for headers in (
        {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://localhost:8000"},
        {"Sec-Fetch-Site": "none"},  # typed by the user
        {},  # pyvo, TOPCAT, curl
    ):
        answer = desktop.post("/campaigns/be/labels", json=LABEL, headers=headers)
        assert answer.status_code == 200, headers

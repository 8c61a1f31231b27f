"""Private datasets over TAP, through pyvo as different users (ALVO_AUTH=header).

Issue 24 found that under ``ALVO_AUTH=header`` TAP showed every dataset and campaign
to everyone. Here ana owns a public dataset ``open`` and a private one ``secret`` that
she shares with carl, and a campaign on each; a real uvicorn serves the whole service
and pyvo asks, sync and async, as anonymous, ben (a stranger), ana and carl. Strangers
see no row of ``secret`` nor of the campaign and labels built on it -- not in a plain
SELECT, a JOIN, a subquery, a COUNT, a TOP, nor in a join with an uploaded table --
and no error either; the owner and the invited reader see everything.
"""

from __future__ import annotations

import numpy as np
import pytest
import pyvo
import requests
import sqlalchemy as sa
from astropy.table import Table

from service.settings import Settings
from service.store.campaigns import Campaigns, Verdict
from service.store.datasets import Datasets
from service.store.privacy import share
from tests.peers.postgres import postgres  # noqa: F401  (the fixture)
from tests.tap_support import tap_server

HEADER = "X-Forwarded-User"
N = {"open": 4, "secret": 3}  # spectra per dataset, each with a label


def fill(settings: Settings) -> None:
    """ana's two datasets (secret: private, carl invited) and a campaign on each."""
    datasets = Datasets(settings)
    for name, n in N.items():
        dataset = datasets.open_or_create(name, "target", owner="ana", private=name == "secret")
        rows = {"pubdid": [f"ivo://t/{name}?{i}" for i in range(n)]}
        datasets.append(dataset, np.zeros((n, 140), np.float32), rows, ["absorption"] * n, "ana")
    share(datasets.engine, "secret", "ana", ["carl"])
    campaigns = Campaigns(settings)
    campaigns.create("open-be", "open", "open", 10, "", "ana", ())
    campaigns.create("secret-be", "open", "secret", 10, "", "ana", ())
    for name, n in N.items():  # an interesting/boring answer on each pool spectrum
        answers = [
            Verdict("interesting", pubdid=f"ivo://t/{name}?{i}", user="ana") for i in range(n)
        ]
        campaigns.add_labels(campaigns.require(f"{name}-be"), answers)


def tap_as(url: str, user: str | None) -> pyvo.dal.TAPService:
    session = requests.Session()
    if user is not None:
        session.headers[HEADER] = user
    return pyvo.dal.TAPService(url, session=session)


def column(tap: pyvo.dal.TAPService, query: str, name: str, **kwargs: object) -> list:
    return [str(v) for v in tap.run_sync(query, **kwargs).to_table()[name]]


QUERIES = {  # query -> result column; what a stranger and a reader see
    "SELECT name FROM alvo.dataset ORDER BY name": "name",
    "SELECT COUNT(*) AS n FROM alvo.spectrum": "n",
    "SELECT TOP 100 pubdid FROM alvo.spectrum ORDER BY pubdid": "pubdid",
    "SELECT s.pubdid FROM alvo.spectrum AS s JOIN alvo.label AS l "
    "ON l.spectrum_id = s.spectrum_id ORDER BY s.pubdid": "pubdid",
    "SELECT COUNT(*) AS n FROM alvo.label": "n",
    "SELECT COUNT(*) AS n FROM alvo.relevance": "n",
    "SELECT name FROM alvo.campaign ORDER BY name": "name",
    "SELECT d.name FROM alvo.dataset AS d WHERE d.dataset_id IN "
    "(SELECT c.target_dataset_id FROM alvo.campaign AS c) ORDER BY d.name": "name",
    "SELECT COUNT(*) AS n FROM alvo.spectrum AS a, alvo.spectrum AS b": "n",
}


def expected(query: str, reader: bool) -> list[str]:
    names = ["open", "secret"] if reader else ["open"]
    pubdids = sorted(f"ivo://t/{d}?{i}" for d in names for i in range(N[d]))
    if "alvo.spectrum AS a" in query:
        return [str(len(pubdids) ** 2)]
    if "COUNT" in query:
        return [str(len(pubdids))]
    if "pubdid" in query:
        return pubdids
    if "alvo.campaign ORDER" in query:
        return [f"{d}-be" for d in names]
    return names


def check_users(url: str) -> None:
    for user, reader in ((None, False), ("ben", False), ("ana", True), ("carl", True)):
        tap = tap_as(url, user)
        for query, name in QUERIES.items():
            assert column(tap, query, name) == expected(query, reader), (user, query)
        refs = Table({"ref": [f"ivo://t/{d}?0" for d in N]})
        joined = column(
            tap,
            "SELECT s.pubdid FROM TAP_UPLOAD.refs AS r JOIN alvo.spectrum AS s "
            "ON s.pubdid = r.ref ORDER BY s.pubdid",
            "pubdid",
            uploads={"refs": refs},
        )
        assert joined == [f"ivo://t/{d}?0" for d in (N if reader else ["open"])], user
        if user is None:  # anonymous callers may not create async jobs under auth=header
            continue
        job = tap.submit_job("SELECT COUNT(*) AS n FROM alvo.spectrum AS s JOIN alvo.label AS l "
                             "ON l.spectrum_id = s.spectrum_id")  # fmt: skip
        job.run()
        job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
        job.raise_if_error()
        assert [str(v) for v in job.fetch_result().to_table()["n"]] == [
            str(sum(N.values()) if reader else N["open"])
        ], user


def test_private_dataset_rows_only_for_owner_and_readers_sqlite(tmp_path, monkeypatch):
    monkeypatch.setenv("ALVO_AUTH", "header")
    monkeypatch.setenv("ALVO_DEMO_ARCHIVE_SIZE", "0")
    fill(Settings(home=tmp_path, auth="header", demo_archive_size=0))
    with tap_server(tmp_path, factory="service.app:create_app") as url:
        check_users(url)


@pytest.mark.peers
def test_private_dataset_rows_only_for_owner_and_readers_postgresql(
    tmp_path,
    monkeypatch,
    postgres,  # noqa: F811
):
    monkeypatch.setenv("ALVO_AUTH", "header")
    monkeypatch.setenv("ALVO_DEMO_ARCHIVE_SIZE", "0")
    database = postgres.create_database("private_datasets")
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_sphere"))
    engine.dispose()
    fill(Settings(home=tmp_path, auth="header", demo_archive_size=0, database_url=database))
    with tap_server(tmp_path, database, factory="service.app:create_app") as url:
        check_users(url)


def test_only_the_owner_shares_and_strangers_cannot_widen_it(tmp_path):
    from starlette.testclient import TestClient

    from service.app import create_app

    settings = Settings(home=tmp_path, auth="header", demo_archive_size=0)
    fill(settings)
    with TestClient(create_app(settings)) as client:
        refused = client.post("/datasets/secret/readers", json={"readers": ["ben"]},
                              headers={HEADER: "ben"})  # fmt: skip
        assert refused.status_code == 403 and refused.json()["reason"] == "NOT_YOURS"
        made = client.post("/datasets/open/readers", json={"readers": ["ben"]},
                           headers={HEADER: "ana"})  # fmt: skip
        assert made.json() == {"dataset": "open", "private": True, "readers": ["ben"]}
        assert client.post("/datasets/open/readers", json={}).status_code == 401


def test_strangers_may_not_build_on_a_private_dataset(tmp_path):
    """Jobs and campaigns would otherwise copy its spectra where TAP shows them."""
    from starlette.testclient import TestClient

    from service.app import create_app

    settings = Settings(home=tmp_path, auth="header", demo_archive_size=0)
    fill(settings)
    ben, carl = {HEADER: "ben"}, {HEADER: "carl"}
    with TestClient(create_app(settings)) as client:
        for path, data in (
            ("/iterate", {"CAMPAIGN": "mine", "SOURCE": "open", "TARGET": "secret"}),
            ("/train", {"DATASET": "secret"}),
        ):
            refused = client.post(path, data=data, headers=ben)
            assert refused.status_code == 403 and "NOT_YOURS" in refused.text, (path, refused.text)
        campaign = {"name": "mine", "source": "open", "target": "secret"}
        refused = client.post("/campaigns", json=campaign, headers=ben)
        assert refused.status_code == 403 and refused.json()["reason"] == "NOT_YOURS"
        assert client.post("/campaigns", json=campaign, headers=carl).status_code == 201


def test_campaigns_on_a_private_dataset_are_not_there_for_strangers(tmp_path):
    """The campaign API, the labelling page and the MOC hide them as TAP does: 404."""
    from starlette.testclient import TestClient

    from service.app import create_app

    settings = Settings(home=tmp_path, auth="header", demo_archive_size=0)
    fill(settings)
    with TestClient(create_app(settings)) as client:
        for user, reader in (({}, False), ({HEADER: "ben"}, False), ({HEADER: "carl"}, True)):
            names = client.get("/campaigns", headers=user).json()["campaigns"]
            assert names == (["open-be", "secret-be"] if reader else ["open-be"]), user
            for path in ("/campaigns/secret-be", "/campaigns/secret-be/labels",
                         "/oracle/secret-be", "/campaigns/secret-be/moc"):  # fmt: skip
                status = client.get(path, headers=user).status_code
                assert status == (200 if reader else 404), (user, path, status)
        label = {"labels": [{"pubdid": "ivo://t/secret?0", "label": "bad"}]}
        refused = client.post("/campaigns/secret-be/labels", json=label, headers={HEADER: "ben"})
        assert refused.status_code == 404

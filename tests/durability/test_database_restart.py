"""The database goes away and comes back under a running ``alvo serve``.

PostgreSQL is stopped (``pg_ctl stop -m fast``, as an operator's restart does) for
thirty seconds while the service answers labels and holds an ingest job in
flight. In the gap every request is a 503 ``DATABASE_UNAVAILABLE`` (or
``DATABASE_BUSY``) with ``Retry-After``, never a 500; the service reconnects by
itself once the server is back (pooled connections are pinged before use); the job
that was running ends in a named phase -- never left EXECUTING -- and every label
acknowledged before, during and after is stored exactly once.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

import httpx
import pytest

from service.net.uws_client import job_status, submit
from tests.durability.storm import CAMPAIGN, build_home, pubdid, stored_labels
from tests.peers.postgres import postgres  # noqa: F401  (the session fixture)
from tests.security.processes import HoldingServer, alvo_serve, free_port, wait_until

pytestmark = [
    pytest.mark.durability,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subprocess service"),
]

#: Seconds PostgreSQL stays stopped.
GAP_S = 30.0


def test_postgresql_restart_under_a_running_service(request, tmp_path) -> None:
    cluster = request.getfixturevalue("postgres")
    url = cluster.create_database(f"restart_{int(time.time() * 1000) % 10**9}")
    home = tmp_path / "home"
    build_home(home, 400, url)
    service = alvo_serve(home, free_port(), database_url=url).start("/availability", timeout=60)
    labels_url = f"{service.url}/campaigns/{CAMPAIGN}/labels"
    acknowledged: list[str] = []
    answers: Counter[str] = Counter()
    row = 0

    def post_label(http: httpx.Client) -> httpx.Response | None:
        nonlocal row
        row += 1
        body = {"labels": [{"pubdid": pubdid(row), "label": "single-peak"}]}
        try:
            answer = http.post(labels_url, json=body)
        except httpx.HTTPError:
            answers["no answer"] += 1
            return None
        answers[f"{answer.status_code} {answer.text[:40]}"] += 1
        if answer.is_success:
            acknowledged.append(pubdid(row))
        return answer

    try:
        with HoldingServer().running() as holding, httpx.Client(timeout=30) as http:
            job_url = submit(f"{service.url}/ingest",
                             [("DATASET", "late"), ("URL", f"{holding.url}/s.fits")])  # fmt: skip
            assert holding.requested.wait(timeout=60)
            assert post_label(http).status_code == 200  # type: ignore[union-attr]

            cluster.halt()
            stopped = time.monotonic()
            gap: list[httpx.Response] = []
            try:
                holding.release.set()  # the job's fetch fails now: it must record that
                while time.monotonic() - stopped < GAP_S:
                    for answer in (post_label(http), http.get(f"{service.url}/campaigns"),
                                   http.get(f"{service.url}/ingest")):  # fmt: skip
                        if answer is not None:
                            gap.append(answer)
                    time.sleep(0.2)
            finally:
                cluster.resume()
            resumed = time.monotonic()

            statuses = Counter(answer.status_code for answer in gap)
            assert set(statuses) == {503}, [(a.status_code, a.text[:200]) for a in gap][:10]
            for answer in gap:
                assert int(answer.headers["retry-after"]) > 0
                code = answer.text.split(":")[0] if "json" not in answer.headers["content-type"] \
                    else answer.json()["reason"]  # fmt: skip
                assert code in ("DATABASE_UNAVAILABLE", "DATABASE_BUSY"), answer.text[:200]

            def reconnected() -> bool:
                answer = post_label(http)
                return answer is not None and answer.status_code == 200

            wait_until(reconnected, 30, "the service to reconnect by itself")
            back = time.monotonic() - resumed

            final = wait_until(
                lambda: (s := job_status(job_url, http.get(job_url).content)).finished and s,
                120, "the ingest to end",
            )  # fmt: skip
            assert final.phase in ("COMPLETED", "ERROR"), final  # type: ignore[attr-defined]
            if final.phase == "ERROR":  # type: ignore[attr-defined]
                code = final.error.split(":")[0]  # type: ignore[attr-defined]
                assert code.isupper() and code != "INTERNAL_ERROR", final.error  # type: ignore[attr-defined]
            for job_list in ("ingest", "iterate"):
                listing = http.get(f"{service.url}/{job_list}", params={"PHASE": "EXECUTING"})
                assert "uws:jobref" not in listing.text, listing.text
    finally:
        service.stop()

    stored = Counter(p for p, _ in stored_labels(url))
    assert all(stored[p] == 1 for p in acknowledged), stored
    assert len(acknowledged) >= 2
    print(f"stopped {GAP_S:.0f} s: {len(gap)} answers in the gap {dict(statuses)}; reconnected "
          f"{back:.2f} s after the server was back; job {final.phase}: "  # type: ignore[attr-defined]
          f"{final.error}; labels acknowledged {len(acknowledged)}, "  # type: ignore[attr-defined]
          f"present {sum(1 for p in acknowledged if stored[p])}; {dict(answers)}")  # fmt: skip

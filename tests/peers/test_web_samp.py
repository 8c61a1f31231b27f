"""The labelling page's SAMP Web Profile client against a real hub (pyvo's SAMPHubServer).

The hub runs with its Web Profile on (on a free port instead of 21012, so
parallel test runs do not collide; the page takes it as ``?samp=``) and a
consent dialog that accepts and records each request. A pyvo client
subscribed to the mtypes TOPCAT, SPLAT-VO and Aladin use checks every message
the page's buttons broadcast, and sends ``table.highlight.row`` back, which
the page must show on the right row.
"""

from __future__ import annotations

import io
import queue
import threading

import httpx
import pytest
from astropy.io.votable import parse_single_table
from pyvo.samp.errors import SAMPProxyError

from tests.peers.samp_desktop_scenario import wait_for
from tests.peers.stilts import votlint
from tests.web_world import chromium, served_world

SPECTRUM = "spectrum.load.ssa-generic"
MTYPES = ("table.load.votable", SPECTRUM, "coord.pointAt.sky")


class AcceptingDialog:
    """A Web Profile consent dialog that says yes, and remembers who asked."""

    def __init__(self) -> None:
        self.queue_request: queue.Queue | None = None  # set by the hub
        self.queue_result: queue.Queue | None = None
        self.requests: list[tuple] = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while self.running:
            try:
                request = self.queue_request.get(timeout=0.1)
            except queue.Empty:
                continue
            self.requests.append(request)
            self.queue_result.put(True)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from pyvo.samp import SAMPHubServer

    home = tmp_path_factory.mktemp("samp-home")
    lockfile = home / "samp.lock"
    patch = pytest.MonkeyPatch()
    patch.setenv("HOME", str(home))
    patch.setenv("SAMP_HUB", f"std-lockurl:{lockfile.as_uri()}")
    dialog = AcceptingDialog()
    server = SAMPHubServer(
        web_profile=True, web_port=0, addr="127.0.0.1", lockfile=str(lockfile),
        web_profile_dialog=dialog,
    )  # fmt: skip
    server.start()
    dialog.thread.start()
    server.dialog = dialog
    yield server
    dialog.running = False
    server.stop()
    patch.undo()


@pytest.fixture(scope="module")
def receiver(hub):
    """Stands in for TOPCAT / SPLAT-VO / Aladin: records every message it is sent."""
    from pyvo.samp import SAMPIntegratedClient

    client = SAMPIntegratedClient(name="checker", addr="127.0.0.1")
    client.connect()
    client.received = []

    def on_notification(private_key, sender_id, mtype, params, extra):
        client.received.append((mtype, params, sender_id))

    def on_call(private_key, sender_id, msg_id, mtype, params, extra):
        # the page sends coord.pointAt.sky as a call, to show Aladin's answer
        client.received.append((mtype, params, sender_id))
        client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})

    for mtype in MTYPES:
        client.bind_receive_notification(mtype, on_notification)
        client.bind_receive_call(mtype, on_call)
    yield client
    client.disconnect()


def names(client) -> dict[str, str]:
    """``{samp.name: client id}`` of the other clients registered with the hub."""
    found = {}
    for other in client.get_registered_clients():
        try:  # a client may unregister between the listing and this call
            found[client.get_metadata(other).get("samp.name")] = other
        except SAMPProxyError:
            continue
    return found


def received(client, mtype):
    """A condition for ``wait_for``: the messages of ``mtype`` the client got so far."""
    return lambda: [m for m in client.received if m[0] == mtype]


def test_page_talks_samp_through_the_web_profile(hub, receiver, tmp_path, artifacts):
    with served_world(tmp_path) as (url, _world), chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{url}/oracle/be?samp=http://localhost:{hub._web_port}/")
        page.wait_for_selector("body[data-ready='1']")
        page.locator("#samp-connect").click()
        page.wait_for_selector("#samp-status:has-text('connected')")
        identity, _, origin = hub.dialog.requests[0]
        assert identity["samp.name"] == "alvo-oracle" and origin == url
        clients = names(receiver)
        assert "alvo-oracle" in clients

        # the batch, to TOPCAT: a VOTable URL whose rows are the page's rows, in order
        page.locator("#samp-table").click()
        ((_, params, sender),) = wait_for(received(receiver, MTYPES[0]), 10, "batch sent")
        assert sender == clients["alvo-oracle"]
        body = httpx.get(params["url"]).content
        assert votlint(body) == []
        table = parse_single_table(io.BytesIO(body)).to_table()
        page_rows = page.evaluate("alvo.rows.map(r => r.pubdid)")
        assert list(table["pubdid"]) == page_rows
        assert params["table-id"] == params["url"] and "iteration 0" in params["name"]

        # one spectrum to SPLAT-VO and its position to Aladin: the s key on the current row
        row = page.evaluate("alvo.rows[4]")
        page.locator(f"#row-{row['id']} .meta").click()  # a click makes the row current
        page.keyboard.press("s")
        ((_, spectrum, _),) = wait_for(received(receiver, SPECTRUM), 10, "spectrum sent")
        assert spectrum["url"] == row["access_url"]
        assert spectrum["spectrum-id"] == row["pubdid"] and spectrum["name"] == row["designation"]
        assert spectrum["meta"]["ssa:Access.Format"] == "application/fits"
        ((_, point, _),) = wait_for(received(receiver, "coord.pointAt.sky"), 10, "position sent")
        assert float(point["ra"]) == pytest.approx(row["ra"], abs=1e-9)
        assert float(point["dec"]) == pytest.approx(row["dec"], abs=1e-9)

        # a row picked in TOPCAT is highlighted on the page
        receiver.notify(clients["alvo-oracle"], {
            "samp.mtype": "table.highlight.row",
            "samp.params": {"table-id": params["table-id"], "url": params["url"], "row": "17"},
        })  # fmt: skip
        page.wait_for_function("alvo.rows[alvo.view[alvo.cursor]].index === 17")
        highlighted = page.evaluate("alvo.rows[17].id")
        assert "current" in page.locator(f"#row-{highlighted}").get_attribute("class")
        page.screenshot(path=str(artifacts / "oracle-samp-highlight.png"))
        # a highlight for somebody else's table changes nothing
        receiver.notify(clients["alvo-oracle"], {
            "samp.mtype": "table.highlight.row",
            "samp.params": {"table-id": "other", "url": "http://x/t.vot", "row": "3"},
        })  # fmt: skip
        page.wait_for_function("alvo.sampSeen === 2")
        assert page.evaluate("alvo.rows[alvo.view[alvo.cursor]].index") == 17

        page.locator("#samp-connect").click()
        wait_for(lambda: "alvo-oracle" not in names(receiver), 10, "page unregistered")
        assert errors == []

"""SAMP messages and the label listener, through a real pyvo hub on loopback."""

from __future__ import annotations

import io
import threading

import pytest
from astropy.table import Table

from service.reasons import AlvoError, Reason
from service.vo import samp
from service.vo.label_tables import OracleLabel, parse_labels


@pytest.fixture
def hub(tmp_path, monkeypatch):
    from pyvo.samp import SAMPHubServer

    lockfile = tmp_path / "samp.lock"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{lockfile.as_uri()}")
    server = SAMPHubServer(web_profile=False, addr="127.0.0.1", lockfile=str(lockfile))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def receiver(hub):
    """A client that records every alvo mtype it is sent and replies samp.ok."""
    from pyvo.samp import SAMPIntegratedClient

    client = SAMPIntegratedClient(name="recorder", addr="127.0.0.1")
    client.connect()
    client.received = []

    def on_call(private_key, sender_id, msg_id, mtype, params, extra):
        client.received.append((mtype, params))
        client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})

    for mtype in (
        "table.load.votable",
        "spectrum.load.ssa-generic",
        "coord.pointAt.sky",
        "table.highlight.row",
        "table.select.rowList",
    ):
        client.bind_receive_call(mtype, on_call)
    yield client
    client.disconnect()


def test_messenger_delivers_each_message_intact(receiver):
    messages = [
        samp.table_load_message("http://x/c.vot", "c1", "candidates"),
        samp.spectrum_load_message(
            "http://x/s.fits", {"ssa:Access.Format": "application/fits"}, "ivo://a?1", "s"
        ),
        samp.point_at_message(83.633, 22.0145),
        samp.highlight_row_message("c1", "http://x/c.vot", 3),
        samp.select_rows_message("c1", "http://x/c.vot", [0, 4]),
    ]
    with samp.connect(name="alvo-test") as client:
        messenger = samp.SampMessenger(client)
        for message in messages:
            reply = messenger.send(message, "recorder")
            assert reply["recorder"]["samp.status"] == "samp.ok"
    assert receiver.received == [(m["samp.mtype"], m["samp.params"]) for m in messages]
    assert receiver.received[2][1] == {"ra": "83.6330000", "dec": "22.0145000"}


def test_unknown_recipient_says_what_to_do(receiver):
    with samp.connect(name="alvo-test") as client, pytest.raises(LookupError, match="start it"):
        samp.SampMessenger(client).send(samp.point_at_message(0, 0), "aladin")


def test_no_hub_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{(tmp_path / 'none').as_uri()}")
    with pytest.raises(ConnectionError, match="no SAMP hub"), samp.connect():
        pass


def _votable(labels, ids=None) -> bytes:
    table = Table({"pubdid": ids or [f"ivo://a?{i}" for i in range(len(labels))], "label": labels})
    out = io.BytesIO()
    table.write(out, format="votable")
    return out.getvalue()


def test_labels_from_votable_skips_unlabelled_rows():
    labels = parse_labels(_votable(["single-peak", "", "Bad"]))
    assert labels == [
        OracleLabel("ivo://a?0", "single-peak"),
        OracleLabel("ivo://a?2", "bad"),
    ]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (Table({"pubdid": ["a"]}), "no 'label' column"),
        (Table({"ra": [1.0], "label": ["bad"]}), "no identifier column"),
        (Table({"pubdid": ["a"], "label": ["emission!"]}), "row 0"),
    ],
)
def test_bad_label_tables_are_refused_with_reason(table, message):
    out = io.BytesIO()
    table.write(out, format="votable")
    with pytest.raises(AlvoError, match=message) as refusal:
        parse_labels(out.getvalue())
    assert refusal.value.reason is Reason.BAD_LABEL_FILE


def test_topcat_style_send_becomes_labels(hub, tmp_path):
    """A table sent to alvo (as TOPCAT's 'send table' does) arrives at the sink."""
    from pyvo.samp import SAMPIntegratedClient

    path = tmp_path / "labelled.vot"
    path.write_bytes(_votable(["double-peak", "absorption"]))
    bad = tmp_path / "unlabelled.vot"
    bad.write_bytes(_votable(["nonsense"]))
    got: list[list[OracleLabel]] = []
    arrived = threading.Event()

    def sink(labels):
        got.append(labels)
        arrived.set()

    with samp.connect(name="alvo") as alvo:
        samp.LabelListener(alvo, sink).register()
        sender = SAMPIntegratedClient(name="topcat-like", addr="127.0.0.1")
        sender.connect()
        try:
            alvo_id = alvo.get_public_id()
            ok = sender.call_and_wait(
                alvo_id, samp.table_load_message(path.as_uri(), "t", "t"), "10"
            )
            refused = sender.call_and_wait(
                alvo_id, samp.table_load_message(bad.as_uri(), "u", "u"), "10"
            )
        finally:
            sender.disconnect()
    assert arrived.is_set()
    assert ok["samp.status"] == "samp.ok" and ok["samp.result"]["labels"] == "2"
    assert [x.label for x in got[0]] == ["double-peak", "absorption"]
    assert refused["samp.status"] == "samp.error"
    assert "nonsense" in refused["samp.error"]["samp.errortxt"]


def test_listener_refuses_a_table_of_another_campaign(hub, tmp_path):
    """Issue 15: `alvo samp listen` took any table sent to it."""
    from pyvo.samp import SAMPIntegratedClient

    other = tmp_path / "other.vot"
    other.write_bytes(
        _votable(["bad"]).replace(b"<RESOURCE", b'<INFO name="campaign" value="b"/><RESOURCE', 1)
    )
    mine = tmp_path / "mine.vot"
    mine.write_bytes(
        _votable(["bad"]).replace(b"<RESOURCE", b'<INFO name="campaign" value="a"/><RESOURCE', 1)
    )
    got: list[list[OracleLabel]] = []
    with samp.connect(name="alvo") as alvo:
        samp.LabelListener(alvo, got.append, campaign="a").register()
        sender = SAMPIntegratedClient(name="topcat-like", addr="127.0.0.1")
        sender.connect()
        try:
            replies = [
                sender.call_and_wait(
                    alvo.get_public_id(), samp.table_load_message(f.as_uri(), "t", "t"), "10"
                )
                for f in (other, mine)
            ]
        finally:
            sender.disconnect()
    assert replies[0]["samp.status"] == "samp.error"
    assert "campaign 'b'" in replies[0]["samp.error"]["samp.errortxt"]
    assert replies[1]["samp.status"] == "samp.ok" and len(got) == 1


def _recorder(name: str):
    """A connected client called ``name`` that records the tables it is sent (and replies)."""
    from pyvo.samp import SAMPIntegratedClient

    client = SAMPIntegratedClient(name=name, addr="127.0.0.1")
    client.connect()
    client.got = []

    def on_call(private_key, sender_id, msg_id, mtype, params, extra):
        client.got.append(params)
        client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})

    client.bind_receive_call("table.load.votable", on_call)
    return client


def test_broadcast_tables_reaches_subscribers(hub):
    """Each table is a call answered before broadcast_tables returns: nothing to wait for."""
    listener = _recorder("listener")
    try:
        status = samp.broadcast_tables({"candidates": "file:///tmp/c.vot"})
    finally:
        listener.disconnect()
    assert status == "broadcast candidates to listener"
    assert listener.got == [{"url": "file:///tmp/c.vot", "table-id": "file:///tmp/c.vot",
                             "name": "candidates"}]  # fmt: skip


def test_samp_send_gives_sky_viewers_only_tables_with_positions(hub, tmp_path):
    """Issue 15: `alvo samp send <job>` sent metrics to Aladin (NullPointerException)."""
    from service.cli import main

    query = tmp_path / "query.vot"
    query.write_bytes(
        b'<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE>'
        b'<TABLE name="query"><FIELD name="ra" datatype="double" ucd="pos.eq.ra;meta.main"/>'
        b'<FIELD name="dec" datatype="double" ucd="pos.eq.dec;meta.main"/>'
        b"<DATA><TABLEDATA><TR><TD>1</TD><TD>2</TD></TR></TABLEDATA></DATA></TABLE>"
        b"</RESOURCE></VOTABLE>"
    )
    metrics = tmp_path / "metrics.vot"
    metrics.write_bytes(_votable(["bad"]).replace(b"<TABLE", b'<TABLE name="metrics"', 1))
    job = tmp_path / "job.xml"
    job.write_text(
        '<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1"><uws:phase>COMPLETED'
        "</uws:phase><uws:results>"
        f'<uws:result id="query" xlink:href="{query.as_uri()}" '
        'mime-type="application/x-votable+xml"/>'
        f'<uws:result id="metrics" xlink:href="{metrics.as_uri()}" '
        'mime-type="application/x-votable+xml"/></uws:results></uws:job>'
    )
    aladin, topcat = _recorder("Aladin"), _recorder("topcat")
    try:
        assert main(["samp", "send", job.as_uri()]) == 0
        assert main(["samp", "send", metrics.as_uri()]) == 0
    finally:
        aladin.disconnect()
        topcat.disconnect()
    assert [p["name"] for p in aladin.got] == ["query"]
    assert [p["name"] for p in topcat.got] == ["query", "metrics", "metrics"]  # not "table"


def test_broadcast_without_hub_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMP_HUB", f"std-lockurl:{(tmp_path / 'none').as_uri()}")
    assert samp.broadcast_tables({"x": "file:///x"}).startswith("not broadcast: no SAMP hub")


def test_samp_send_command_sends_tables_job_results_and_spectra(receiver, tmp_path):
    """`alvo samp send` on a VOTable, a UWS job document and a FITS spectrum."""
    import numpy as np
    from astropy.io import fits

    from service.cli import main

    votable = tmp_path / "candidates.vot"
    votable.write_bytes(_votable(["bad"]))
    job = tmp_path / "job.xml"
    job.write_text(
        '<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1"><uws:phase>COMPLETED'
        '</uws:phase><uws:results><uws:result id="query" xlink:href="'
        f'{votable.as_uri()}" mime-type="application/x-votable+xml"/>'
        '<uws:result id="learning-curve" xlink:href="file:///x.png" mime-type="image/png"/>'
        "</uws:results></uws:job>"
    )
    spectrum = tmp_path / "spectrum.fits"
    fits.PrimaryHDU(np.zeros(10)).writeto(spectrum)
    for target in (votable, job, spectrum):
        assert main(["samp", "send", target.as_uri(), "--to", "recorder"]) == 0
    mtypes = [mtype for mtype, _ in receiver.received]
    assert mtypes == ["table.load.votable", "table.load.votable", "spectrum.load.ssa-generic"]
    assert receiver.received[1][1]["name"] == "query"  # the job's VOTable result, not its PNG
    assert receiver.received[2][1]["meta"]["ssa:Access.Format"] == "application/fits"

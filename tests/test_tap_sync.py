"""TAP sync on the embedded SQLite: DALI parameters, formats, uploads, limits, confinement."""

from __future__ import annotations

import io
import sqlite3
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import votable
from lxml import etree
from starlette.applications import Starlette
from starlette.testclient import TestClient

from service.settings import Settings
from service.vo.tap import adql
from service.vo.tap import execute as tap
from service.vo.tap import metadata as vosi
from service.vo.tap import routes as tap_routes
from service.vo.tap.query import TapDatabase
from tests.tap_support import sqlite_demo

V = "{http://www.ivoa.net/xml/VOTable/v1.3}"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tap-home")
    sqlite_demo(folder, 2000)
    return folder


@pytest.fixture(scope="module")
def client(home):
    settings = Settings(home=home)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield TestClient(Starlette(routes=tap_routes.routes(settings)))


@pytest.fixture(scope="module")
def spectra(home):
    """The spectrum table's positions, read directly (the truth for geometry checks)."""
    with sqlite3.connect(home / "alvo.sqlite") as conn:
        rows = conn.execute("SELECT spectrum_id, ra, dec FROM spectrum").fetchall()
    ids, ra, dec = (np.array(c) for c in zip(*rows, strict=True))
    return ids, SkyCoord(ra * u.deg, dec * u.deg)


def query(client, adql_text, method="GET", **params):
    params = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql_text, **params}
    if method == "GET":
        return client.get("/tap/sync", params=params)
    return client.post("/tap/sync", data=params)


def table_of(response):
    assert response.status_code == 200, response.text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return votable.parse_single_table(io.BytesIO(response.content)).to_table()


def error_text(response):
    assert response.status_code == 400, response.text
    root = etree.fromstring(response.content)
    info = root.find(f"{V}RESOURCE/{V}INFO[@name='QUERY_STATUS']")
    assert info.get("value") == "ERROR"
    return info.text


def test_get_and_post_give_the_same_rows(client):
    text = "SELECT TOP 5 prediction_id, entropy FROM alvo.prediction ORDER BY entropy DESC"
    a, b = table_of(query(client, text)), table_of(query(client, text, "POST"))
    assert len(a) == 5 and list(a["prediction_id"]) == list(b["prediction_id"])
    assert np.all(np.diff(a["entropy"]) <= 0)


def test_result_fields_carry_the_schema_metadata(client):
    response = query(client, "SELECT TOP 1 ra, dec AS declination FROM alvo.spectrum")
    fields = etree.fromstring(response.content).findall(f".//{V}FIELD")
    assert [(f.get("name"), f.get("ucd"), f.get("unit")) for f in fields] == [
        ("ra", "pos.eq.ra;meta.main", "deg"),
        ("declination", "pos.eq.dec;meta.main", "deg"),
    ]


def test_top_entropy_matches_a_direct_computation(client, home):
    table = table_of(query(client, vosi.EXAMPLES[0][3]))
    with sqlite3.connect(home / "alvo.sqlite") as conn:
        last = "(SELECT MAX(iteration) FROM prediction)"
        entropies = [
            r[0] for r in conn.execute(f"SELECT entropy FROM prediction WHERE iteration = {last}")
        ]
    assert np.allclose(table["entropy"], sorted(entropies, reverse=True)[:100])


@pytest.mark.parametrize("example", vosi.EXAMPLES, ids=[e[0] for e in vosi.EXAMPLES])
def test_every_example_runs(client, example):
    assert len(table_of(query(client, example[3]))) > 0


def test_cone_agrees_with_astropy(client, spectra):
    ids, coords = spectra
    centre = SkyCoord(83.8 * u.deg, -5.4 * u.deg)
    expected = sorted(ids[coords.separation(centre) < 10 * u.deg])
    table = table_of(query(client, "SELECT spectrum_id FROM alvo.spectrum WHERE 1 = CONTAINS("
                           "POINT('ICRS', ra, dec), CIRCLE('ICRS', 83.8, -5.4, 10))"))  # fmt: skip
    assert 0 < len(expected) < len(ids)
    assert sorted(table["spectrum_id"]) == expected


def test_distance_agrees_with_astropy(client, spectra):
    ids, coords = spectra
    table = table_of(query(client, "SELECT spectrum_id, DISTANCE(POINT(ra, dec), "
                           "POINT(200.0, -30.0)) AS d FROM alvo.spectrum"))  # fmt: skip
    truth = dict(zip(ids, coords.separation(SkyCoord(200 * u.deg, -30 * u.deg)).deg, strict=True))
    assert np.allclose(table["d"], [truth[i] for i in table["spectrum_id"]], atol=1e-9)


def test_maxrec_overflow_is_flagged_after_the_table(client):
    response = query(client, "SELECT spectrum_id FROM alvo.spectrum", MAXREC="7")
    assert len(table_of(response)) == 7
    resource = etree.fromstring(response.content).find(f"{V}RESOURCE")
    tags = [(c.tag.replace(V, ""), c.get("value")) for c in resource]
    assert tags.index(("INFO", "OVERFLOW")) > tags.index(("TABLE", None))
    exact = query(client, "SELECT TOP 7 spectrum_id FROM alvo.spectrum", MAXREC="7")
    assert b"OVERFLOW" not in exact.content
    empty = query(client, "SELECT spectrum_id FROM alvo.spectrum", MAXREC="0")
    assert len(table_of(empty)) == 0 and b"OVERFLOW" in empty.content


@pytest.mark.parametrize(
    "fmt, serialization",
    [("votable", "TABLEDATA"), ("application/x-votable+xml;serialization=BINARY2", "BINARY2"),
     ("votable/b2", "BINARY2")],
)  # fmt: skip
def test_votable_serializations(client, fmt, serialization):
    response = query(client, "SELECT TOP 3 spectrum_id, role FROM alvo.prediction",
                     RESPONSEFORMAT=fmt)  # fmt: skip
    assert f"<{serialization}>".encode() in response.content
    assert len(table_of(response)) == 3


def test_csv(client):
    response = query(client, "SELECT TOP 2 spectrum_id, role FROM alvo.prediction "
                     "ORDER BY spectrum_id", "POST", RESPONSEFORMAT="csv")  # fmt: skip
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert lines[0] == "spectrum_id,role" and len(lines) == 3


def test_upload_joins_a_target_list(client, spectra):
    _, coords = spectra
    targets = [(10.0, 20.0, "a"), (250.0, -40.0, "b"), (120.0, 60.0, "c")]
    document = io.BytesIO()
    table = votable.tree.VOTableFile.from_table(
        __import__("astropy.table", fromlist=["Table"]).Table(
            rows=targets, names=("ra", "dec", "tag")
        )
    )
    table.to_xml(document)
    response = client.post(
        "/tap/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT u.tag, COUNT(*) AS n FROM TAP_UPLOAD.targets AS u "
              "JOIN alvo.spectrum AS s ON 1 = CONTAINS(POINT(s.ra, s.dec), CIRCLE(POINT(u.ra, "
              "u.dec), 8)) GROUP BY u.tag ORDER BY u.tag", "UPLOAD": "targets,param:list"},
        files={"list": ("targets.vot", document.getvalue())},
    )  # fmt: skip
    result = table_of(response)
    expected = {tag: int(np.sum(coords.separation(SkyCoord(ra * u.deg, dec * u.deg)).deg < 8))
                for ra, dec, tag in targets}  # fmt: skip
    assert dict(zip(result["tag"], result["n"], strict=True)) == {
        k: v for k, v in expected.items() if v
    }


def test_bad_upload_is_a_named_error(client):
    response = client.post("/tap/sync", data={"LANG": "ADQL", "QUERY": "SELECT * FROM "
                           "TAP_UPLOAD.t", "UPLOAD": "t,param:f"},
                           files={"f": ("t.vot", b"<not a votable")})  # fmt: skip
    assert error_text(response).startswith("BAD_UPLOAD")
    missing = client.post("/tap/sync", data={"LANG": "ADQL", "QUERY": "SELECT 1 FROM x",
                                             "UPLOAD": "t,param:nothere"})  # fmt: skip
    assert "BAD_UPLOAD" in error_text(missing)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"LANG": "SQL"}, "LANG"),
        ({"REQUEST": "getCapabilities"}, "REQUEST"),
        ({"QUERY": ""}, "QUERY"),
        ({"MAXREC": "-3"}, "MAXREC"),
        ({"RESPONSEFORMAT": "application/fits"}, "RESPONSEFORMAT"),
    ],
)
def test_bad_parameters(client, params, message):
    merged = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": "SELECT TOP 1 * FROM alvo.spectrum"}
    merged.update(params)
    assert message in error_text(client.get("/tap/sync", params=merged))


@pytest.mark.parametrize(
    "text, message",
    [
        ("DROP TABLE alvo.spectrum", "syntax error"),
        ("DELETE FROM alvo.spectrum", "syntax error"),
        ("INSERT INTO alvo.label VALUES (1)", "syntax error"),
        ("UPDATE alvo.label SET label = 'bad'", "syntax error"),
        ("SELECT * FROM alvo.spectrum; DROP TABLE alvo.spectrum", "one SELECT"),
        ("SELECT TOP 1 load_extension('x') FROM alvo.spectrum", "load_extension"),
        ("SELECT TOP 1 readfile('/etc/passwd') FROM alvo.spectrum", "readfile"),
        ("SELECT TOP 1 pg_sleep(10) FROM alvo.spectrum", "pg_sleep"),
        ("SELECT TOP 1 pg_read_file('x') FROM alvo.spectrum", "pg_read_file"),
        ("SELECT * FROM sqlite_master", "sqlite_master"),
        ("SELECT * FROM alvo.secret", "alvo.secret"),
        ("ATTACH DATABASE '/tmp/x' AS x", "syntax error"),
        ("SELECT nope FROM alvo.spectrum", "no such column"),
        ("SELECT AREA(CIRCLE(1, 2, 3)) FROM alvo.spectrum", "AREA"),
        ("SELECT TOP 1 ra FROM alvo.spectrum WHERE 1 = CONTAINS(POLYGON(1, 2, 3, 4, 5, 6), "
         "CIRCLE(1, 2, 3))", "CONTAINS(polygon, circle) is not supported"),
        ("SELECT TOP 1 * FROM alvo.spectrum WHERE 1 = CONTAINS(POINT(ra, dec), "
         "CIRCLE(1, 2, 120))", "0-90"),
    ],
)  # fmt: skip
def test_only_select_on_published_tables_runs(client, text, message):
    reply = error_text(query(client, text))
    assert reply.startswith("BAD_QUERY") and message in reply


def test_geometry_arguments_are_never_evaluated_as_python(client):
    """queryparser eval()s geometry arguments; our translation must not (1/0 would raise)."""
    table = table_of(query(client, "SELECT TOP 1 spectrum_id FROM alvo.spectrum WHERE "
                           "1 = CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 1/0)) OR 1 = 1"))  # fmt: skip
    assert len(table) == 1


def test_sqlite_authorizer_stops_what_got_past_adql(home):
    """Defence in depth: SQL that bypassed the ADQL checks still cannot escape."""
    db = TapDatabase(f"sqlite:///{home / 'alvo.sqlite'}")
    for sql in ("SELECT load_extension('x')", "SELECT * FROM sqlite_master",
                "ATTACH DATABASE ':memory:' AS x", "PRAGMA table_info(spectrum)",
                "DELETE FROM spectrum"):  # fmt: skip
        with (
            db._engine.connect() as conn,
            pytest.raises(Exception, match=r"not authorized|prohibited|readonly"),
        ):
            db._run_sqlite(conn, adql.Translation(sql, frozenset()), {}, 5, 5.0)
    db.dispose()


def test_timeout_stops_a_long_query(home):
    db = TapDatabase(f"sqlite:///{home / 'alvo.sqlite'}", timeout_s=0.2)
    with pytest.raises(Exception) as raised:
        db.run(
            "SELECT COUNT(*) AS n FROM alvo.prediction AS a, alvo.prediction AS b "
            "WHERE a.entropy + b.entropy > 100",
            10,
        )
    assert raised.value.reason.name == "QUERY_TIMEOUT"
    db.dispose()


def test_limits_are_published(client):
    caps = client.get("/tap/capabilities").content
    limits = tap.TapLimits()
    assert f'<hard unit="row">{limits.max_maxrec}</hard>'.encode() in caps


def test_operator_limits_come_from_settings(home):
    """ALVO_TAP_MAXREC caps every query and is what the capabilities promise."""
    settings = Settings.from_env({"ALVO_TAP_MAXREC": "7", "ALVO_TAP_TIMEOUT": "5"}, home=home)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        capped = TestClient(Starlette(routes=tap_routes.routes(settings)))
    assert b'<hard unit="row">7</hard>' in capped.get("/tap/capabilities").content
    response = query(capped, "SELECT spectrum_id FROM alvo.spectrum", MAXREC="100")
    assert len(table_of(response)) == 7 and b'name="QUERY_STATUS" value="OVERFLOW"' in (
        response.content
    )
    limits = tap.TapLimits.from_settings(settings)
    assert (limits.timeout_s, limits.execution_s, limits.default_maxrec) == (5.0, 3600, 7)


def test_unaliased_expressions_get_usable_column_names(client):
    """Issue 15: ``COUNT(*)`` came back as a column named "COUNT (*)"."""
    result = table_of(query(client, "SELECT COUNT(*), MAX(entropy) FROM alvo.prediction"))
    assert result.colnames == ["count", "max"] and result["count"][0] > 0
    named = table_of(query(client, "SELECT COUNT(*) AS n FROM alvo.prediction"))
    assert named.colnames == ["n"]

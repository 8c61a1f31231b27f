"""Property-based fuzzing of every request parser, through the whole app.

Hypothesis makes up parameters -- names the parsers know and names they do not,
values near the edges (numbers with exponents, NaN, control characters, huge
integers, ADQL fragments) -- and sends them as a client would. Whatever comes
in, the answer must be no 5xx, carry no traceback text, and come within 5 s.

The ``alvo-fuzz`` profile keeps this reproducible and short for CI: derandomized
(the same examples every run), no example database, a modest number of
examples per parser (``ALVO_FUZZ_EXAMPLES`` raises it for a longer hunt).
"""

from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.inputs_world import assert_clean, build_home, served

settings.register_profile(
    "alvo-fuzz",
    max_examples=int(os.environ.get("ALVO_FUZZ_EXAMPLES", "30")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ = settings.get_profile("alvo-fuzz")
#: The longest a single answer may take.
ANSWER_S = 5.0

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app, one job to poke at (aborted: a WAIT on it returns at once) and its URL."""
    with served(build_home(tmp_path_factory.mktemp("fuzz-home"))) as client:
        created = client.post(
            "/classify", data={"DATASET": "pool", "MODEL_ID": "1"}, follow_redirects=False
        )
        job = created.headers["location"].rsplit("/", 1)[1]
        client.post(f"/classify/{job}/phase", data={"PHASE": "ABORT"})
        yield client, f"/classify/{job}"


def answered(send):  # type: ignore[no-untyped-def]
    """Send, then check the answer: clean, and in time."""
    started = time.monotonic()
    response = send()
    assert time.monotonic() - started < ANSWER_S, "answer took longer than 5 s"
    assert_clean(response)
    return response


# --- what the values are made of -----------------------------------------------------------------
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e400", "-0", "0x10", "1_000", " 5 ", "", "-1"]),
)
text = st.text(max_size=40)  # any code point, control characters and surrogates' neighbours too
#: Values that broke parsers before, and their kind: seeds the search near the edges.
edges = st.sampled_from(
    ["a\x01b", "\x00", "\ufffe", "..", "../x", "9" * 25, "1e400", "nan,nan", "-5", "x" * 300,
     "t,param:..", "..,param:t", "\u00b2", "ABORT", "ICRS", "votable", ",,", "/",
     "2030-01-01T00:00:00Z"]
)  # fmt: skip
values = st.one_of(numbers, text, edges)


def params(names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    """Some of the known names (any case) and the odd unknown one, with edge values."""
    known = st.sampled_from(names).flatmap(lambda n: st.sampled_from([n, n.lower(), n.title()]))
    return st.dictionaries(st.one_of(known, known, text.filter(bool)), values, max_size=6)


def not_run(fields: dict[str, str]) -> bool:
    """Jobs are created, never started: a run would fork a worker for every example."""
    return all(v.strip().upper() != "RUN" for k, v in fields.items() if k.upper() == "PHASE")


# --- UWS -----------------------------------------------------------------------------------------
UWS_CREATE = ["DATASET", "MODEL_ID", "RUNID", "EXECUTIONDURATION", "DESTRUCTION", "PHASE", "UPLOAD"]


@FUZZ
@given(fields=params(UWS_CREATE).filter(not_run))
def test_uws_job_creation(app, fields):
    client, _ = app
    response = answered(lambda: client.post("/classify", data=fields, follow_redirects=False))
    if response.status_code == 303:  # created: its document and the list must still render
        answered(lambda: client.get(response.headers["location"]))
        answered(lambda: client.get("/classify", params={"LAST": "3"}))


@FUZZ
@given(runid=text, name=text.filter(lambda n: n.strip() != ""), value=text)
def test_uws_any_text_is_refused_or_shown_again(app, runid, name, value):
    """Whatever text a job is created with, its document and the job list still render."""
    fields = {"DATASET": "pool", "MODEL_ID": "1", "RUNID": runid, name: value}
    if not_run(fields):
        test_uws_job_creation.hypothesis.inner_test(app, fields)


@FUZZ
@given(fields=params(["PHASE", "AFTER", "LAST"]))
def test_uws_job_list_filters(app, fields):
    client, _ = app
    answered(lambda: client.get("/classify", params=fields))


@FUZZ
@given(fields=params(["WAIT", "PHASE"]))
def test_uws_blocking_wait(app, fields):
    client, job = app
    answered(lambda: client.get(job, params=fields))


@FUZZ
@given(
    resource=st.sampled_from(["phase", "executionduration", "destruction", "parameters", ""]),
    fields=params(["PHASE", "EXECUTIONDURATION", "DESTRUCTION", "ACTION", "DATASET"]).filter(
        not_run
    ),
)
def test_uws_job_changes(app, resource, fields):
    client, job = app
    fields = {k: v for k, v in fields.items() if k.upper() != "ACTION"}  # keep the job
    answered(lambda: client.post(f"{job}/{resource}".rstrip("/"), data=fields))


# --- DALI: SSA and DataLink ----------------------------------------------------------------------
SSA = ["REQUEST", "POS", "SIZE", "BAND", "TIME", "MAXREC", "RESPONSEFORMAT", "FORMAT", "TARGETNAME"]


@FUZZ
@given(fields=params(SSA), post=st.booleans())
def test_ssa_query(app, fields, post):
    client, _ = app
    if post:
        answered(lambda: client.post("/ssa/ondrejov", data=fields))
    else:
        answered(lambda: client.get("/ssa/ondrejov", params=fields))


@FUZZ
@given(fields=params(["ID", "RESPONSEFORMAT", "MAXREC"]))
def test_datalink_links(app, fields):
    client, _ = app
    answered(lambda: client.get("/datalink/ondrejov", params=fields))


# --- TAP -----------------------------------------------------------------------------------------
ADQL_WORDS = [
    "SELECT", "TOP", "5", "*", "FROM", "TAP_SCHEMA.tables", "alvo.dataset", "WHERE", "AND",
    "OR", "NOT", "(", ")", "=", "<", "'x'", "table_name", "COUNT(*)", "ORDER BY", "1", "1e400",
    "--", "\n", ";", "CONTAINS(POINT('ICRS', 1, 2), CIRCLE('ICRS', 1, 2, 0.1))", "JOIN", "ON",
    "DISTANCE(POINT('ICRS', 0, 0), POINT('ICRS', 1e300, -1e300))", "GROUP BY", "AS", "\"n\"",
]  # fmt: skip
adql = st.one_of(
    st.lists(st.sampled_from(ADQL_WORDS), max_size=14).map(" ".join).map("SELECT ".__add__),
    text,
)


@FUZZ
@given(
    query=adql,
    fields=params(["LANG", "MAXREC", "RESPONSEFORMAT", "REQUEST", "UPLOAD", "FORMAT"]),
)
def test_tap_sync(app, query, fields):
    client, _ = app
    fields = {k: v for k, v in fields.items() if "http" not in v}  # fetching is another suite's
    fields = {"REQUEST": "doQuery", "LANG": "ADQL", **fields, "QUERY": query}
    answered(lambda: client.post("/tap/sync", data=fields))


# --- campaigns and labels ------------------------------------------------------------------------
json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(10**25), max_value=10**25),
        st.floats(allow_nan=False), text,
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
label_items = st.fixed_dictionaries(
    {},
    optional={
        "pubdid": st.one_of(st.just("ivo://t/pool?0"), json_values),
        "spectrum_id": json_values,
        "label": st.one_of(st.sampled_from(["single-peak", "absorption", "bad"]), json_values),
        "iteration": json_values,
    },
)


@FUZZ
@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {"labels": st.lists(label_items, max_size=4)}, optional={"source": json_values}
        ),
        json_values,
    )
)
def test_labels_json(app, body):
    client, _ = app
    answered(lambda: client.post("/campaigns/be/labels", content=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"}))  # fmt: skip


csv_cells = st.one_of(
    st.sampled_from(["pubdid", "label", "ivo://t/pool?1", "absorption", "0"]), text
)


@FUZZ
@given(
    rows=st.lists(st.lists(csv_cells, min_size=1, max_size=3), max_size=5),
    sep=st.sampled_from([",", ";", "\t", '"']),
    raw=st.binary(max_size=64),
)
def test_labels_csv(app, rows, sep, raw):
    client, _ = app
    body = "\n".join(sep.join(row) for row in rows).encode("utf-8", "surrogatepass") + raw
    answered(lambda: client.post("/campaigns/be/labels", content=body,
                                 headers={"content-type": "text/csv"}))  # fmt: skip


VOTABLE = """<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>
<FIELD name="{id}" datatype="{type}" arraysize="*"/>
<FIELD name="label" datatype="char" arraysize="*"/>
<DATA><TABLEDATA><TR><TD>{value}</TD><TD>{label}</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE>
</VOTABLE>"""


@FUZZ
@given(
    id_column=st.sampled_from(["pubdid", "obsid", "x", "spectrum_id"]),
    datatype=st.sampled_from(["char", "int", "double", "boolean", "nonsense"]),
    value=st.one_of(numbers, text),
    label=st.one_of(st.sampled_from(["absorption", "0", "3", ""]), text),
    cut=st.integers(min_value=0, max_value=600),
)
def test_labels_votable(app, id_column, datatype, value, label, cut):
    client, _ = app
    from xml.sax.saxutils import escape

    document = VOTABLE.format(id=id_column, type=datatype, value=escape(value), label=escape(label))
    body = document.encode("utf-8", "surrogatepass")
    body = body[: len(body) - cut] if cut < 300 else body  # truncated documents too
    answered(lambda: client.post("/campaigns/be/labels", files={"file": ("l.xml", body)}))


@FUZZ
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "description": json_values,
            "batch": st.one_of(numbers, json_values),
        },
    ).flatmap(
        lambda optional: st.fixed_dictionaries(
            {
                "name": st.one_of(st.just("c1"), st.just("c1"), json_values),
                "source": st.one_of(st.just("src"), st.just("src"), json_values),
                "target": st.one_of(st.just("pool"), st.just("pool"), json_values),
            }
        ).map(lambda required: {**required, **optional})
    ),
    as_form=st.booleans(),
)
def test_campaign_create(app, body, as_form):
    client, _ = app
    if as_form:
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        response = answered(lambda: client.post("/campaigns", data=fields))
    else:
        headers = {"content-type": "application/json"}
        response = answered(
            lambda: client.post("/campaigns", content=json.dumps(body), headers=headers)
        )
    if response.status_code == 201:  # made one: remove it so the next example may too
        from service.store import schema
        from service.store.campaigns import Campaigns

        campaigns = Campaigns(client.app.state.settings)
        with campaigns.engine.begin() as conn:
            conn.execute(schema.campaign.delete().where(schema.campaign.c.name != "be"))

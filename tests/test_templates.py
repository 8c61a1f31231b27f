"""service.vo.templates: templates keep their metadata; rows and nulls survive a round trip."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io.votable import parse

from service.vo import templates


@pytest.mark.parametrize("serialization", ["tabledata", "binary2"])
def test_rows_and_nulls_round_trip_through_astropy(serialization):
    doc = templates.load("datalink.xml")
    doc.fill(
        "links",
        {
            "dl_ID": np.array(["a&b", "c<d", None], dtype=object),
            "dl_content_length": np.ma.masked_array([10, 0, 7], mask=[False, True, False]),
            "dl_link_authorized": np.array([True, False, True]),
        },
        serialization,
    )
    table = parse(io.BytesIO(doc.to_bytes())).get_first_table()
    assert list(table.array["dl_ID"]) == ["a&b", "c<d", ""]  # a null char is empty
    assert table.array.mask["dl_content_length"].tolist() == [False, True, False]
    assert table.array["dl_content_length"][2] == 7
    assert set(table.array["dl_access_url"]) == {""}  # no array given: all null
    assert table.get_field_by_id("dl_semantics").ucd == "meta.code"  # metadata kept


def test_param_values_are_escaped_once_and_copies_get_unique_ids():
    doc = templates.load("datalink.xml")
    doc.set_param("proc_accessURL", "http://h/p?a=1&b=2")
    clone = doc.copy_element("proc", "proc-2")
    ids = doc.root.xpath("//@ID")
    assert len(ids) == len(set(ids)) and clone.get("ID") == "proc-2"
    body = doc.to_bytes()
    assert b"a=1&amp;b=2" in body and b"&amp;amp;" not in body
    votable = parse(io.BytesIO(body))
    urls = [p.value for r in votable.resources[1:] for p in r.params if p.name == "accessURL"]
    assert urls == ["http://h/p?a=1&b=2", "http://h/p?a=1&b=2"]


def test_empty_table_and_unknown_names_are_refused_or_valid():
    doc = templates.load("ssa.xml")
    doc.fill("results", {})
    assert len(parse(io.BytesIO(doc.to_bytes())).get_first_table().array) == 0
    with pytest.raises(KeyError):
        doc.set_param("no_such_param", 1)
    with pytest.raises(ValueError, match="not a template"):
        templates.load("../pyproject.toml")
    with pytest.raises(ValueError, match="different lengths"):
        doc.fill("results", {"ssa_snr": [1.0], "ssa_pubDID": ["a", "b"]})


def test_a_null_row_of_an_array_field_is_null_in_every_element():
    doc = templates.load("ssa.xml")
    position = np.ma.masked_array([[1.0, 2.0], [0.0, 0.0]], mask=[[False, False], [True, True]])
    doc.fill("results", {"ssa_location": position, "ssa_snr": np.ma.masked_invalid([3.0, np.nan])})
    table = parse(io.BytesIO(doc.to_bytes())).get_first_table()
    assert table.array["ssa_location"][0].tolist() == [1.0, 2.0]
    assert np.ma.getmaskarray(table.array["ssa_location"])[1].all()
    assert np.ma.getmaskarray(table.array["ssa_snr"]).tolist() == [False, True]


def test_metrics_rows_describe_their_own_iteration_as_tap_does():
    """Issue 15: the metrics table put ``error`` on the row its description said it was not
    on, and its precision was single-peak-only; every column now means what alvo.iteration's
    column of the same name means (one row = one model and its batch)."""
    from service.store import schema

    table = templates.load("metrics.xml").table("metrics")
    described = {
        f.get("name"): f.findtext(templates.v("DESCRIPTION")).lower()
        for f in table.iter(templates.v("FIELD"))
    }
    assert "describes this iteration" in described["iteration"]
    assert "previous" not in described["error"] and "this iteration" in described["error"]
    assert "emission-vs-absorption" in described["precision_emission"]
    for name in ("n_labels", "n_candidates", "error", "precision_emission", "train_seconds"):
        assert name in schema.iteration.c, name
        assert "previous" not in schema.iteration.c[name].info["description"].lower()

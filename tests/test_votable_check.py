"""The in-process VOTable validator the core tests use instead of STILTS: it must bite."""

from __future__ import annotations

import pytest

from tests.votable_check import votable_problems

HEAD = b'<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
TAIL = b"</TABLE></RESOURCE></VOTABLE>"


def test_a_valid_table_passes():
    body = HEAD + b'<FIELD name="n" datatype="int" ucd="meta.number"/>'
    body += b"<DATA><TABLEDATA><TR><TD>3</TD></TR></TABLEDATA></DATA>" + TAIL
    assert votable_problems(body) == []


@pytest.mark.parametrize(
    ("inner", "complaint"),
    [
        (b'<FIELD name="n" datatype="integer"/>', "XSD"),  # no such datatype
        (b'<DATA><TABLEDATA/></DATA><FIELD name="n" datatype="int"/>', "XSD"),  # order
        (b'<FIELD name="e" datatype="float" ucd="stat.uncertainty"/>', "UCD"),  # unknown word
        (
            b'<FIELD name="n" datatype="int"/><DATA><TABLEDATA><TR><TD>x</TD></TR>'
            b"</TABLEDATA></DATA>",
            "astropy",
        ),
    ],
)
def test_invalid_tables_are_reported(inner, complaint):
    problems = votable_problems(HEAD + inner + TAIL)
    assert problems and any(complaint in p for p in problems), problems


def test_not_xml_is_reported():
    assert votable_problems(b"<VOTABLE")[0].startswith("not XML")

"""service.vo.votable_encoding: every supported datatype round-trips through astropy's parser."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io.votable import parse

from service.vo.votable_encoding import FieldType, encode

FIELDS = [
    ("b", "boolean", None),
    ("u", "unsignedByte", None),
    ("s", "short", None),
    ("i", "int", None),
    ("l", "long", None),
    ("f", "float", None),
    ("d", "double", None),
    ("p", "double", "2"),
    ("c", "char", "*"),
    ("k", "char", "4"),
    ("w", "unicodeChar", "*"),
]
COLUMNS = {
    "b": np.ma.masked_array([True, False, True], mask=[False, False, True]),
    "u": np.array([0, 255, 7]),
    "s": np.array([-32768, 1, 32767]),
    "i": np.ma.masked_array([1, -2, 3], mask=[False, True, False]),
    "l": np.array([2**40, -1, 0]),
    "f": np.array([0.1, np.nan, -np.inf], dtype=np.float32),
    "d": np.array([6.25e-07, np.inf, 1 / 3]),
    "p": np.ma.masked_array([[1.0, 2.0], [3.0, 4.0], [0, 0]], mask=[[0, 0], [0, 0], [1, 1]]),
    "c": np.array(["a&b<c>", None, ""], dtype=object),
    "k": np.array(["abcdef", "x", None], dtype=object),
    "w": np.array(["Ondřejov", "γ Cas", None], dtype=object),
}


def document(serialization: str) -> bytes:
    fields = "".join(
        f'<FIELD name="{n}" datatype="{t}"' + (f' arraysize="{a}"' if a else "") + "/>"
        for n, t, a in FIELDS
    )
    types = [FieldType(t, a) for _, t, a in FIELDS]
    data = encode(serialization, types, [COLUMNS[n] for n, _, _ in FIELDS], 3)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        f"<RESOURCE><TABLE>{fields}{data}</TABLE></RESOURCE></VOTABLE>"
    ).encode()


@pytest.mark.filterwarnings("error")  # e.g. W46: a string longer than its FIELD says
@pytest.mark.parametrize("serialization", ["tabledata", "binary2", "binary"])
def test_values_and_nulls_read_back(serialization):
    table = parse(io.BytesIO(document(serialization)), verify="exception").get_first_table()
    array = table.array
    assert array["b"][:2].tolist() == [True, False] and array.mask["b"][2]
    assert array["u"].tolist() == [0, 255, 7]
    assert array["s"].tolist() == [-32768, 1, 32767]
    assert array["i"][0] == 1 and array["i"][2] == 3
    if serialization != "binary":  # BINARY cannot flag a null integer
        assert array.mask["i"].tolist() == [False, True, False]
    assert array["l"].tolist() == [2**40, -1, 0]
    assert array["f"][0] == np.float32(0.1) and np.isnan(np.ma.getdata(array["f"])[1])
    assert array["f"][2] == -np.inf
    assert array["d"].tolist() == [6.25e-07, np.inf, 1 / 3]  # exact: shortest round-trip text
    assert array["p"][0].tolist() == [1.0, 2.0] and np.ma.getmaskarray(array["p"][2]).all()
    assert list(array["c"][:1]) == ["a&b<c>"]
    assert array["k"][0] == "abcd" and array["k"][1] == "x"  # fixed width: cut, then padded
    assert list(array["w"][:2]) == ["Ondřejov", "γ Cas"]


def test_unsupported_types_are_refused():
    with pytest.raises(ValueError, match="not supported"):
        encode("tabledata", [FieldType("floatComplex")], [np.zeros(1)], 1)
    with pytest.raises(ValueError, match="variable-size numeric"):
        encode("binary2", [FieldType("double", "*")], [np.zeros(1)], 1)

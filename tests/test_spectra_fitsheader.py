"""Card values as the bulk reader parses them: the types astropy gives, for every form."""

from __future__ import annotations

import pytest

from service.spectra.fitsheader import parse_cards, parse_value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("                   5 / rows", 5),
        ("                  -7", -7),
        ("  2.458D+03 / double", 2458.0),
        ("  1.5E-3", 0.0015),
        ("  1e2", 100.0),
        ("  3.", 3.0),
        ("                   T", True),
        ("  F / no", False),
        ("  'Flux Inverse ''x''  ' / text", "Flux Inverse 'x'"),
        ("  'unterminated", None),
        ("     / only a comment", None),
        ("  nan", float("nan")),
        ("  12h30m", "12h30m"),
        ("  1.0d5", "1.0d5"),  # lower-case d is no FITS exponent: kept as text
    ],
)
def test_parse_value(field: str, value: object) -> None:
    parsed = parse_value(field)
    if isinstance(value, float) and value != value:
        assert parsed != parsed
    else:
        assert parsed == value and type(parsed) is type(value)


def test_cards_parse_once_and_the_first_of_a_repeated_keyword_wins() -> None:
    cards = [f"{'NAXIS':8s}=                    2", f"{'COEFF0':8s}=              3.5682",
             f"{'NAXIS':8s}=                    3", f"{'HISTORY':8s}  no value", "END"]  # fmt: skip
    raw = "".join(c.ljust(80) for c in cards).ljust(2880).encode()
    parsed, length = parse_cards(raw)
    assert length == 2880 and parsed["NAXIS"] == 2 == parsed.get("NAXIS")
    assert parsed["COEFF0"] == 3.5682 and "HISTORY" not in parsed and parsed.get("X", 1) == 1

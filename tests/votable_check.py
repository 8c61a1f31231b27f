"""In-process VOTable validation for the core tests (no STILTS, so they never skip).

Two independent checks, both must be silent:

* the IVOA VOTable 1.4 XML Schema (``tests/schemas/VOTable-1.4.xsd``, bundled:
  the same file astropy ships, namespace ``http://www.ivoa.net/xml/VOTable/v1.3``),
  validated with xmlschema -- element order, attribute values, datatypes;
* astropy's parser with ``verify="exception"`` -- the rules the schema cannot say
  (arraysize against values, units, UCDs, ``ID`` references, value parsing).

STILTS ``votlint`` stays in tests/peers, run where the Debian peers are installed.
"""

from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path

import xmlschema
from lxml import etree

XSD = Path(__file__).parent / "schemas" / "VOTable-1.4.xsd"


@functools.lru_cache(maxsize=1)
def _schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def votable_problems(body: bytes) -> list[str]:
    """What is wrong with a VOTable document; an empty list means valid."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        tree = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as error:
        return [f"not XML: {error}"]
    problems = [f"XSD: {error.reason} at {error.path}" for error in _schema().iter_errors(tree)]
    from astropy.io.votable import parse
    from astropy.io.votable.exceptions import VOWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", VOWarning)
        try:
            parse(io.BytesIO(body), verify="exception")
        except Exception as error:  # astropy raises VOWarning subclasses and ValueErrors
            problems.append(f"astropy: {error}")
    return problems

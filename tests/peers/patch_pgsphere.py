#!/usr/bin/env python3
"""Make Debian's pgSphere 1.2.0 extension script load on PostgreSQL >= 15.20.

The script's "backwards-compatible operators for GAVO DaCHS" declare the ``@``
operators with COMMUTATOR '@>' / NEGATOR '!<@', but '@>' already has '<@' as
its commutator; PostgreSQL 15.20 rejects that ("commutator operator @> is
already the commutator of operator <@"), so CREATE EXTENSION pg_sphere fails
and with it the gavodachs2-server install. Dropping those two clauses from the
legacy ``@`` operators only loses an optimiser hint for a deprecated operator.
Idempotent; prints what it did. Run as root by install-debian-deps.sh.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = "backwards-compatible operators for GAVO DaCHS"


def patch(text: str) -> str:
    head, sep, tail = text.partition(MARKER)
    if not sep:
        return text

    def strip(block: re.Match[str]) -> str:
        body = re.sub(r"\n\s*(COMMUTATOR|NEGATOR)\s*=\s*'[^']*',", "", block.group(0))
        return body

    tail = re.sub(r"CREATE OPERATOR @ \(.*?\);", strip, tail, flags=re.S)
    return head + sep + tail


def main() -> int:
    scripts = sorted(Path("/usr/share/postgresql").glob("*/extension/pg_sphere--1.2.0.sql"))
    for script in scripts:
        text = script.read_text()
        patched = patch(text)
        if patched != text:
            script.write_text(patched)
            print(f"patched {script}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

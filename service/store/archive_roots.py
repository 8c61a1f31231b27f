"""The operator's archive roots: the only local folders the service reads spectra from.

``alvo ingest tree ROOT`` records each spectrum by its ``file://`` URL. The
service itself never reads a local path a *request* names (:mod:`service.net.fetch`
and :mod:`service.net.confinement` refuse every scheme but http(s)), but ROOT was
named by the operator on the command line, so it is trusted: the ingest
registers it here (table ``archive_root``, not published over TAP), and
``ALVO_ARCHIVE_ROOTS`` may list more (a read-only mounted release the service
did not ingest itself, or a tree ingested before roots were recorded -- running
the ingest again adds nothing but registers its root).

A file is read or served only if, after resolving every link, it is a regular
spectrum file (:data:`service.spectra.files.SUFFIXES`) inside the root its path
names; no ``..``, no absolute relative path, no link that points out. Anything
else is refused with :attr:`Reason.OUTSIDE_ARCHIVE_ROOT`.

The database keeps the ``file://`` URL: it is the provenance, and the key a
re-run of the tree ingest skips known files by. Clients get the served form
(``{base}/archive/{root_id}/{relative path}`` and its DataLink, see
:mod:`service.vo.archive_links`) by a rewrite on output (:meth:`Roots.served`),
so a changed ``ALVO_BASE_URL`` or a moved service needs no update of millions
of rows, and a root dropped from the list stops being served at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

import sqlalchemy as sa

from service.reasons import AlvoError, Reason
from service.settings import Settings
from service.spectra.files import SUFFIXES
from service.store import schema
from service.store.engine import engine_for

#: Where the service serves the files of a root (``/archive/{root_id}/{path}``).
ROUTE = "archive"


def root_id(root: Path) -> str:
    """A short stable name of a resolved folder: the same on every restart and host."""
    return hashlib.blake2b(str(root).encode(), digest_size=6).hexdigest()


def register(settings: Settings, root: Path) -> str:
    """Record ``root`` (resolved) as an operator archive root; idempotent. Returns its id."""
    root = Path(root).resolve()
    rid = root_id(root)
    table = schema.archive_root
    engine = engine_for(settings.sqlalchemy_url)
    with engine.connect() as conn:
        if conn.scalar(sa.select(table.c.root_id).where(table.c.root_id == rid)) is not None:
            return rid
    with contextlib.suppress(sa.exc.IntegrityError), engine.begin() as conn:
        # two ingests of one tree at once: the second insert loses, the row is there
        conn.execute(table.insert().values(root_id=rid, path=str(root), registered=schema.utcnow()))
    return rid


def load(settings: Settings) -> Roots:
    """The registered roots and those of ``ALVO_ARCHIVE_ROOTS``, as they are now."""
    table = schema.archive_root
    with engine_for(settings.sqlalchemy_url).connect() as conn:
        stored = [Path(p) for p in conn.scalars(sa.select(table.c.path))]
    listed = [Path(p).resolve() for p in settings.archive_roots.split(os.pathsep) if p.strip()]
    return Roots({root_id(r): r for r in [*stored, *listed]})


def refused(detail: str) -> AlvoError:
    return AlvoError(Reason.OUTSIDE_ARCHIVE_ROOT, detail[:300])


@dataclasses.dataclass(frozen=True)
class Roots:
    """Archive roots by id, each an absolute folder with links resolved."""

    by_id: dict[str, Path]

    def file(self, rid: str, relative: str) -> Path:
        """The regular spectrum file ``relative`` under root ``rid``, checked (see module)."""
        root = self.require(rid)
        parts = PurePosixPath(relative).parts
        if not parts or relative.startswith("/") or ".." in parts or "\x00" in relative:
            raise refused(f"{relative!r} is not a path inside archive root {rid}")
        if not relative.lower().endswith(SUFFIXES):
            raise refused(f"{relative!r} is not a spectrum file")
        try:
            found = (root / relative).resolve(strict=True)
        except (OSError, RuntimeError):  # missing, or a loop of links
            raise AlvoError(
                Reason.UNKNOWN_FILE, f"no file {relative[:200]!r} in archive root {rid}"
            ) from None
        if not found.is_relative_to(root) or not found.is_file():
            raise refused(f"{relative!r} leads out of archive root {rid} or is not a file")
        return found

    def place(self, url: str) -> tuple[str, str] | None:
        """``(root id, relative path)`` of a ``file://`` URL under a root (by name, no I/O)."""
        if not url.startswith("file://"):
            return None
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            return None
        path = os.fsdecode(unquote_to_bytes(parts.path))
        best: tuple[str, str] | None = None
        for rid, root in self.by_id.items():
            prefix = str(root).rstrip("/") + "/"
            if path.startswith(prefix) and (best is None or len(prefix) > len(best[1])):
                best = (rid, prefix)
        return None if best is None else (best[0], path[len(best[1]) :])

    def local_file(self, url: str) -> Path:
        """The checked file a tree-ingested ``file://`` URL names (:meth:`file`)."""
        found = self.place(url)
        if found is None:
            raise refused(f"{url[:200]} is not under an archive root")
        return self.file(*found)

    def require(self, rid: str) -> Path:
        if rid not in self.by_id:
            raise refused(f"no archive root {rid!r}")
        return self.by_id[rid]

    def served_url(self, url: str | None, base_url: str) -> str | None:
        """The http(s) URL the service serves a root's ``file://`` URL at; others unchanged."""
        found = self.place(url or "")
        return url if found is None else served(base_url, *found)

    def served(self, row: Mapping[str, Any], base_url: str) -> dict[str, Any]:
        """A copy of a ``spectrum`` row for clients: a root's ``file://`` access URL as the
        URL the service serves it at, and (when it has none) the service's DataLink
        {links} URL of it, so ``#this``, ``#preview`` and ``#proc`` work as elsewhere."""
        found = self.place(row.get("access_url") or "")
        if found is None:
            return dict(row)
        out = {**row, "access_url": served(base_url, *found)}
        if not row.get("datalink_url") and row.get("pubdid"):
            out["datalink_url"] = datalink_url(base_url, found[0], str(row["pubdid"]))
        return out

    def served_rows(self, rows: Iterable[Mapping[str, Any]], base_url: str) -> list[dict[str, Any]]:
        return [self.served(row, base_url) for row in rows]


def public_urls(settings: Settings) -> Callable[[list[Any]], list[Any]]:
    """For TAP: a column of URLs as clients can open them (a root's ``file://`` ones
    served by the service), the roots read afresh for each column that has any."""

    def rewrite(values: list[Any]) -> list[Any]:
        if not any(isinstance(v, str) and v.startswith("file://") for v in values):
            return values
        roots = load(settings)
        return [roots.served_url(v, settings.public_url) if isinstance(v, str) else v
                for v in values]  # fmt: skip

    return rewrite


def served(base_url: str, rid: str, relative: str) -> str:
    """Where the service serves the file ``relative`` of root ``rid``."""
    return f"{base_url}/{ROUTE}/{rid}/{quote(relative)}"


def datalink_url(base_url: str, rid: str, pubdid: str) -> str:
    """The DataLink {links} URL of the spectrum ``pubdid`` under root ``rid``."""
    from service.spectra.access import links_url

    return links_url(f"{base_url}/{ROUTE}/{rid}/datalink", pubdid)

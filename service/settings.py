"""One Settings object, read from ALVO_* environment variables.

The names match the ``alvo serve`` options (``--port`` <-> ``ALVO_PORT``), so a
deployment can be configured either way. Defaults give the embedded service:
127.0.0.1:8000, SQLite and the demo archive under ``./var``, local executor.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

PREFIX = "ALVO_"


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    home: Path = Path("var")
    database_url: str = ""  # empty: SQLite under home
    executor: str = "local"  # local | dask
    dask_scheduler: str = ""  # tcp://host:8786; empty with executor=dask: LocalCluster
    workers: int = 2
    base_url: str = ""  # public URL of the service; empty: http://host:port
    demo_archive_size: int = 2000  # spectra per collection generated on first start
    max_upload_bytes: int = 100 * 1024 * 1024
    max_label_bytes: int = 32 * 1024 * 1024  # a label POST (JSON, CSV, VOTable); 413 above
    simbad: str = "on"  # on | off: identify candidates in SIMBAD (skipped, and said, offline)
    auth: str = "anonymous"  # anonymous | header (the user a trusted proxy names in auth_header)
    auth_header: str = "X-Forwarded-User"  # the ONE header trusted to name the user (auth=header)
    tap_maxrec: int = 1_000_000  # hard row limit of a TAP query (MAXREC above it is capped)
    ssa_maxrec: int = 10_000  # hard row limit of one embedded SSA query (more: OVERFLOW status)
    tap_timeout: int = 60  # seconds a synchronous TAP query may run
    tap_async_timeout: int = 3600  # seconds an asynchronous TAP query may run
    fetch_timeout: int = 120  # seconds one fetch (spectrum, SSA/DataLink, LABELS, UPLOAD) may take
    fetch_max_bytes: int = 64 * 1024 * 1024  # largest spectrum or document fetched
    fetch_allow: str = ""  # CIDRs and host names fetched although private (see docs/security.md)
    archive_roots: str = ""  # more trusted archive folders, os.pathsep-separated (read-only mounts)
    scoring_precision: str = "auto"  # auto | fp32 | bf16 | int8 (fp32 where the CPU lacks it)
    cpu_flags: str = ""  # CPU flags to assume instead of /proc/cpuinfo's (tests, "avx2")

    @property
    def public_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'alvo.sqlite').resolve()}"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``ALVO_*`` variables; explicit overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _convert(field.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    # A job runs in a worker process (spawned, or on a Dask worker) that did not see
    # the command line: the service leaves its settings in its home, and a runner
    # finds them from its job directory, which always lives under that home.
    SNAPSHOT = "settings.json"

    def save_snapshot(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["home"] = str(self.home.resolve())
        path = self.home / self.SNAPSHOT
        path.write_text(json.dumps(values, indent=1))
        return path

    @classmethod
    def for_job(cls, workdir: Path) -> Settings:
        """The settings of the service that owns the job directory ``workdir``."""
        for folder in Path(workdir).resolve().parents:
            snapshot = folder / cls.SNAPSHOT
            if snapshot.exists():
                values = json.loads(snapshot.read_text())
                values["home"] = Path(values["home"])
                return cls(**values)
        raise FileNotFoundError(f"no {cls.SNAPSHOT} above {workdir}: not a job of an alvo home")


def _convert(annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    if "int" in kind:
        return int(raw)
    if "Path" in kind:
        return Path(raw)
    return raw

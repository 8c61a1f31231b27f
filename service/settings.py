"""One Settings object, read from ALVO_* environment variables.

The names match the ``alvo serve`` options (``--port`` <-> ``ALVO_PORT``), so a
deployment can be configured either way. Defaults give the embedded service:
127.0.0.1:8000, SQLite and the demo archive under ``./var``, local executor.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from pathlib import Path
from typing import Any, TypeVar

PREFIX = "ALVO_"
DEFAULT_HOME = Path("var")

T = TypeVar("T")


def setting(default: T, help: str, *, choices: tuple[str, ...] = (), shown: str | None = None) -> T:
    """A :class:`Settings` field with what ``alvo serve --help`` says of it.

    ``help`` says what it is; the option's help then adds the variable's name and
    the default, as ``shown`` words it (else the default itself; ``""``: none
    shown). ``choices`` are the values the option accepts.
    """
    meta = {"help": help, "choices": choices, "shown": shown}
    return dataclasses.field(default=default, metadata=meta)


def env_name(field: str) -> str:
    """The environment variable of a setting: ``database_url`` -> ``ALVO_DATABASE_URL``."""
    return PREFIX + field.upper()


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything an operator sets, each one an ``ALVO_<NAME>`` variable and a
    ``--name`` option of ``alvo serve`` (in this order in its help)."""

    host: str = setting("127.0.0.1", "interface to bind")
    port: int = setting(8000, "TCP port")
    home: Path = setting(DEFAULT_HOME, "data directory", shown="./var")  # noqa: RUF009 (a Path is immutable)
    database_url: str = setting(
        "",
        "SQLAlchemy URL, e.g. postgresql+psycopg://user@host/alvo",
        shown="SQLite under --home",
    )
    executor: str = setting(
        "local",
        "job executor: processes here, a Dask cluster, or Dask workers as SLURM batch jobs",
        choices=("local", "dask", "slurm"),
    )
    dask_scheduler: str = setting(
        "",
        "tcp://host:8786 for --executor dask",
        shown="none: an in-process cluster of --workers threads",
    )
    slurm_jobs: int = setting(1, "SLURM jobs, one Dask worker each, for --executor slurm")
    slurm_cores: int = setting(2, "CPUs of each SLURM worker job (its Dask threads)")
    slurm_memory: str = setting("4GiB", "memory of each SLURM worker job (sbatch --mem)")
    slurm_partition: str = setting("", "SLURM partition of the worker jobs", shown="the default")
    slurm_walltime: str = setting("24:00:00", "time limit of each SLURM worker job")
    base_url: str = setting("", "public URL when behind a proxy", shown="http://HOST:PORT")
    auth: str = setting(
        "anonymous",
        "who owns jobs, datasets, campaigns and labels: everyone anonymous (a desktop "
        "service), or the user an authenticating reverse proxy names in --auth-header; "
        "then anonymous callers may only read",
        choices=("anonymous", "header"),
    )
    auth_header: str = setting(
        "X-Forwarded-User",
        "the one request header the proxy sets (and strips from clients) to name the "
        "user, with --auth header",
    )
    simbad: str = setting(
        "on", "identify candidates in SIMBAD", choices=("on", "off"), shown="on; skipped offline"
    )
    demo_archive_size: int = setting(
        2000,
        "spectra per collection of the embedded demo archive, made on first start",
        shown="2000; 0: none",
    )
    workers: int = setting(2, "jobs run at once")
    tap_maxrec: int = setting(1_000_000, "row limit of a TAP query; a larger MAXREC is capped")
    ssa_maxrec: int = setting(
        10_000, "row limit of one embedded SSA query; more rows: OVERFLOW status"
    )
    tap_timeout: int = setting(60, "seconds a sync TAP query may run")
    tap_anonymous_timeout: int = setting(
        10,
        "seconds a sync TAP query may run for a caller the proxy names no one, with "
        "--auth header (signed-in callers get --tap-timeout)",
    )
    tap_async_timeout: int = setting(3600, "seconds an async TAP query may run")
    fetch_timeout: int = setting(
        120,
        "seconds one fetch of a user-given URL may take in all: spectrum, SSA/DataLink "
        "query, LABELS, UPLOAD",
    )
    fetch_max_bytes: int = setting(64 * 1024 * 1024, "largest spectrum or document fetched")
    fetch_allow: str = setting(
        "",
        "comma-separated CIDRs and host names the service may fetch from although "
        "private, loopback or link-local, e.g. 10.1.0.0/16,archive.intra",
        shown="none: public addresses, the service itself, and loopback when it listens "
        "on loopback; see docs/security.md",
    )
    archive_roots: str = setting(
        "",
        "folders of archive trees (a read-only mounted LAMOST release) whose spectrum "
        "files the service may read and serve at /archive/..., separated by "
        f"{os.pathsep!r}; the folders given to 'alvo ingest tree' are trusted without this",
        shown="none; see docs/security.md",
    )
    max_upload_bytes: int = setting(
        100 * 1024 * 1024,
        "largest job or TAP request body (uploads included) in bytes; larger is refused with 413",
    )
    max_head_bytes: int = setting(
        64 * 1024,
        "largest request head (request line and headers) in bytes; larger is refused with "
        "431 REQUEST_HEAD_TOO_LARGE, a longer request line with 414 URL_TOO_LONG",
    )
    max_label_bytes: int = setting(
        32 * 1024 * 1024,
        "largest label POST to a campaign, JSON/CSV/VOTable, in bytes; larger is refused "
        "with 413 BODY_TOO_LARGE",
    )
    scoring_precision: str = setting(
        "auto",
        "arithmetic of pool scoring",
        choices=("auto", "fp32", "bf16", "int8"),
        shown="auto: bf16 with AMX/AVX-512 BF16, else int8 with AVX2 or better, else fp32; "
        "pools under 20 000 spectra in fp32; int8 is checked against fp32 on each pool and "
        "falls back below 99.9% agreement; a precision the CPU lacks falls back to fp32",
    )
    hips: str = setting(
        "CDS/P/DSS2/color",
        "the sky survey under the labelling page's sky panel: a HiPS identifier (found "
        "through the CDS MocServer) or a HiPS URL; the demo archive's spectra are shown on "
        "its own local sky; 'off': no panel",
    )
    aladin_lite: str = setting(
        "",
        "path of Aladin Lite's aladin.js (npm aladin-lite, the version service.web.sky pins), "
        "which the service serves to the sky panel",
        shown="the copy 'make aladin-lite' leaves in ~/.cache/alvo",
    )
    cpu_flags: str = setting(
        "",
        "CPU flags to assume, space- or comma-separated, e.g. 'avx2': how the tests "
        "simulate another CPU",
        shown="/proc/cpuinfo's",
    )

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
        for name, kind in cls.types().items():
            raw = env.get(env_name(name))
            if raw is not None:
                values[name] = kind(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def types(cls) -> dict[str, type]:
        """Each setting's type (``str``, ``int`` or ``Path``), which reads its text."""
        hints = typing.get_type_hints(cls)
        return {field.name: hints[field.name] for field in dataclasses.fields(cls)}

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

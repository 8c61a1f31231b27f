"""``alvo serve``: run the VO service (starlette + uvicorn)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the VO service",
        description=(
            "Run the alvo VO service. Without options it serves the embedded demo "
            "archive with SQLite and a local process pool on http://127.0.0.1:8000/. "
            "Each option defaults to the ALVO_<NAME> environment variable."
        ),
    )
    parser.add_argument("--host", help="interface to bind (ALVO_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (ALVO_PORT, default 8000)")
    parser.add_argument("--home", type=Path, help="data directory (ALVO_HOME, default ./var)")
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/alvo "
        "(ALVO_DATABASE_URL; default SQLite under --home)",
    )
    parser.add_argument(
        "--executor", choices=["local", "dask"], help="job executor (ALVO_EXECUTOR, default local)"
    )
    parser.add_argument(
        "--dask-scheduler", help="tcp://host:8786 for --executor dask (ALVO_DASK_SCHEDULER)"
    )
    parser.add_argument("--base-url", help="public URL when behind a proxy (ALVO_BASE_URL)")
    parser.add_argument(
        "--auth",
        choices=["anonymous", "header"],
        help="who owns jobs, datasets, campaigns and labels: everyone anonymous (default, "
        "a desktop service), or the user an authenticating reverse proxy names in "
        "--auth-header; then anonymous callers may only read (ALVO_AUTH)",
    )
    parser.add_argument(
        "--auth-header",
        help="the one request header the proxy sets (and strips from clients) to name the "
        "user, with --auth header (ALVO_AUTH_HEADER, default X-Forwarded-User)",
    )
    parser.add_argument(
        "--simbad",
        choices=["on", "off"],
        help="identify candidates in SIMBAD (ALVO_SIMBAD, default on; skipped offline)",
    )
    parser.add_argument(
        "--demo-archive-size",
        type=int,
        help="spectra per collection of the embedded demo archive, made on first start "
        "(ALVO_DEMO_ARCHIVE_SIZE, default 2000; 0: none)",
    )
    parser.add_argument("--workers", type=int, help="jobs run at once (ALVO_WORKERS, default 2)")
    parser.add_argument(
        "--tap-maxrec", type=int, help="row limit of a TAP query (ALVO_TAP_MAXREC, default 1000000)"
    )
    parser.add_argument(
        "--ssa-maxrec",
        type=int,
        help="row limit of one embedded SSA query (ALVO_SSA_MAXREC, default 10000)",
    )
    parser.add_argument(
        "--tap-timeout",
        type=int,
        help="seconds a sync TAP query may run (ALVO_TAP_TIMEOUT, default 60)",
    )
    parser.add_argument(
        "--tap-async-timeout",
        type=int,
        help="seconds an async TAP query may run (ALVO_TAP_ASYNC_TIMEOUT, default 3600)",
    )
    parser.add_argument(
        "--fetch-timeout",
        type=int,
        help="seconds one fetch of a user-given URL may take in all: spectrum, SSA/DataLink "
        "query, LABELS, UPLOAD (ALVO_FETCH_TIMEOUT, default 120)",
    )
    parser.add_argument(
        "--fetch-max-bytes",
        type=int,
        help="largest spectrum or document fetched (ALVO_FETCH_MAX_BYTES, default 67108864)",
    )
    parser.add_argument(
        "--fetch-allow",
        help="comma-separated CIDRs and host names the service may fetch from although "
        "private, loopback or link-local, e.g. 10.1.0.0/16,archive.intra (ALVO_FETCH_ALLOW; "
        "default none: public addresses, the service itself, and loopback when it listens "
        "on loopback; see docs/security.md)",
    )
    parser.add_argument(
        "--archive-roots",
        help="folders of archive trees (a read-only mounted LAMOST release) whose spectrum "
        "files the service may read and serve at /archive/..., separated by "
        f"{os.pathsep!r}; the folders given to 'alvo ingest tree' are trusted without "
        "this (ALVO_ARCHIVE_ROOTS, default none; see docs/security.md)",
    )
    parser.add_argument(
        "--max-upload-bytes",
        type=int,
        help="largest job or TAP request body (uploads included) in bytes; larger is "
        "refused with 413 (ALVO_MAX_UPLOAD_BYTES, default 104857600)",
    )
    parser.add_argument(
        "--max-label-bytes",
        type=int,
        help="largest label POST to a campaign, JSON/CSV/VOTable, in bytes; larger is "
        "refused with 413 BODY_TOO_LARGE (ALVO_MAX_LABEL_BYTES, default 33554432)",
    )
    parser.add_argument(
        "--scoring-precision",
        choices=["auto", "fp32", "bf16", "int8"],
        help="arithmetic of pool scoring (ALVO_SCORING_PRECISION, default auto: bf16 with "
        "AMX/AVX-512 BF16, else int8 with AVX2 or better, else fp32; pools under 20 000 "
        "spectra in fp32; int8 is checked against fp32 on each pool and falls back below "
        "99.9%% agreement; a precision the CPU lacks falls back to fp32)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from service.net.confinement import parse_allow
    from service.settings import Settings

    names = {f.name for f in dataclasses.fields(Settings)}
    overrides = {k: v for k, v in vars(args).items() if k in names}
    settings = Settings.from_env(**overrides)
    try:  # a typo in the fence must stop the start, not every later fetch
        parse_allow(settings.fetch_allow)
    except ValueError as error:
        print(f"alvo serve: {error}", file=sys.stderr)
        return 2
    from service.app import create_app

    settings.home.mkdir(parents=True, exist_ok=True)
    if settings.demo_archive_size > 0:
        from service.archive.generate import ensure_demo_archive

        print(f"demo archive: {settings.demo_archive_size} spectra per collection (made once)")
        ensure_demo_archive(settings.home, settings.demo_archive_size, workers=settings.workers)
    app = create_app(settings)
    print(f"alvo serving on {settings.public_url}/  (data in {settings.home.resolve()})")
    # uws's serve releases blocked WAITs on SIGTERM, so a restart never hangs on them
    from uws.serving import serve

    serve(app, app.state.uws, host=settings.host, port=settings.port, log_level="info")
    return 0

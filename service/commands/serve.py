"""``alvo serve``: run the VO service (starlette + uvicorn)."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import threading
from pathlib import Path

from service.settings import Settings, env_name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the VO service",
        description=(
            "Run the alvo VO service. Without options it serves the embedded demo "
            "archive with SQLite and a local process pool on http://127.0.0.1:8000/. "
            "Each option defaults to the ALVO_<NAME> environment variable, and each "
            "ALVO_<NAME> variable is an option."
        ),
    )
    for field in dataclasses.fields(Settings):
        add_setting(parser, field, Settings.types()[field.name])
    parser.set_defaults(func=run)


def add_setting(parser: argparse.ArgumentParser, field: dataclasses.Field, kind: type) -> None:
    """``--name`` for the setting ``name``: its help from the field's metadata, then the
    variable and the default (:func:`service.settings.setting`). The option's own
    default is None, so that a setting left off the command line comes from the
    environment."""
    meta = field.metadata
    shown = meta["shown"] if meta["shown"] is not None else str(field.default)
    where = env_name(field.name) + (f", default {shown}" if shown else "")
    parser.add_argument(
        "--" + field.name.replace("_", "-"),
        type=kind,
        choices=meta["choices"] or None,
        help=f"{meta['help']} ({where})".replace("%", "%%"),  # argparse formats help with %
    )


def settings_of(args: argparse.Namespace) -> Settings:
    """The environment's settings with the options given on the command line instead."""
    names = {f.name for f in dataclasses.fields(Settings)}
    return Settings.from_env(**{k: v for k, v in vars(args).items() if k in names})


def run(args: argparse.Namespace) -> int:
    from service.net.confinement import parse_allow

    settings = settings_of(args)
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
        print("demo sky: a HiPS of the demo field for the sky panel (made once, ~1 min, ")
        print("           in the background: until it is there the panel uses --hips)")
        threading.Thread(target=_make_demo_sky, args=(settings.home,), daemon=True).start()
    app = create_app(settings)
    print(f"alvo serving on {settings.public_url}/  (data in {settings.home.resolve()})")
    # uws's serve releases blocked WAITs on SIGTERM, so a restart never hangs on them
    from service.http.head import HeadLimitedProtocol
    from uws.serving import serve

    serve(
        app,
        app.state.uws,
        host=settings.host,
        port=settings.port,
        log_level="info",
        http=HeadLimitedProtocol,
        h11_max_incomplete_event_size=settings.max_head_bytes,
    )
    return 0


def _make_demo_sky(home: Path) -> None:
    """Hipsgen takes about a minute: the service answers meanwhile (the sky panel looks
    for the finished HiPS at each request, and Hipsgen renames it into place whole)."""
    from service.archive.skyimage import ensure_demo_sky
    from service.reasons import AlvoError

    try:
        if ensure_demo_sky(home) is None:
            print("demo sky: no Hipsgen (Debian's aladin and java): the panel uses --hips")
        else:
            print("demo sky: ready")
    except (AlvoError, OSError, subprocess.TimeoutExpired) as error:  # serve on without
        print(f"demo sky: not made ({error}): the sky panel uses --hips", file=sys.stderr)

"""``alvo serve``: one option per setting, generated from :class:`service.settings.Settings`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from service.cli import build_parser
from service.commands.serve import settings_of
from service.settings import Settings, env_name

#: The options ``alvo serve`` had when they were written by hand: none may go or be renamed.
BEFORE = [
    "--host",
    "--port",
    "--home",
    "--database-url",
    "--executor",
    "--dask-scheduler",
    "--base-url",
    "--auth",
    "--auth-header",
    "--simbad",
    "--demo-archive-size",
    "--workers",
    "--tap-maxrec",
    "--ssa-maxrec",
    "--tap-timeout",
    "--tap-async-timeout",
    "--fetch-timeout",
    "--fetch-max-bytes",
    "--fetch-allow",
    "--archive-roots",
    "--max-upload-bytes",
    "--max-label-bytes",
    "--scoring-precision",
]


def serve_options() -> dict[str, str]:
    """``--option`` -> its help, as ``alvo serve --help`` shows it."""
    subparsers = build_parser()._subparsers
    assert subparsers is not None
    (choices,) = (a.choices for a in subparsers._group_actions)
    serve = choices["serve"]
    return {a.option_strings[0]: a.help or "" for a in serve._actions if a.dest != "help"}


def test_every_setting_is_an_option_named_as_its_variable() -> None:
    options = serve_options()
    for field in dataclasses.fields(Settings):
        variable = env_name(field.name)
        option = "--" + variable.removeprefix("ALVO_").lower().replace("_", "-")
        assert option in options, f"{variable} has no option {option}"
        assert f"({variable}" in options[option], options[option]
    assert len(options) == len(dataclasses.fields(Settings))
    assert set(BEFORE) <= set(options)


def test_the_help_says_the_default_and_what_it_means() -> None:
    options = serve_options()
    assert options["--port"] == "TCP port (ALVO_PORT, default 8000)"
    assert options["--home"] == "data directory (ALVO_HOME, default ./var)"
    assert options["--fetch-max-bytes"].endswith("(ALVO_FETCH_MAX_BYTES, default 67108864)")
    assert "99.9%% agreement" in options["--scoring-precision"]  # argparse prints 99.9%
    assert "default none: public addresses" in options["--fetch-allow"]


def test_a_command_line_value_overrides_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("ALVO_PORT", "9000")
    monkeypatch.setenv("ALVO_HOME", "/srv/alvo")
    monkeypatch.setenv("ALVO_EXECUTOR", "dask")
    args = build_parser().parse_args(["serve", "--port", "9123", "--home", "elsewhere"])
    settings = settings_of(args)
    assert (settings.port, settings.home) == (9123, Path("elsewhere"))
    assert settings.executor == "dask"  # not on the command line: the environment's


def test_options_are_typed_and_checked_as_their_settings() -> None:
    parser = build_parser()
    settings = settings_of(parser.parse_args(["serve", "--workers", "5", "--auth", "header"]))
    assert settings.workers == 5 and settings.auth == "header"
    for wrong in (["--port", "eighty"], ["--executor", "pbs"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["serve", *wrong])

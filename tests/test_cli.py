"""The command line is discoverable: every subcommand shows up in --help."""

from __future__ import annotations

import pytest

from service.cli import build_parser, main


def test_help_lists_serve(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "serve" in capsys.readouterr().out


def test_every_subcommand_has_help():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():
        assert sub.description or sub.format_help(), name


def test_reasons_page_is_the_command_output():
    """docs/reasons.md must list exactly the reasons the code has (regenerate with alvo reasons)."""
    from pathlib import Path

    from service.commands.reasons import markdown

    page = Path(__file__).resolve().parents[1] / "docs" / "reasons.md"
    assert page.read_text() == markdown(), "run: alvo reasons > docs/reasons.md"

"""Help for every flag of every command, with its default, and no reST markup.

Walks the whole parser tree (``cli.parser()`` and every subparser, recursively), so a
flag added later without a help string, or with a default its help does not show,
fails here rather than in front of a user.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from simulator.commands import cli


def walk(p: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                   argparse.ArgumentParser]]:
    """Every parser under ``p`` with the words that reach it (``("wallet", "serve")``)."""
    yield path, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, (*path, name))


PARSERS = list(walk(cli.parser()))
COMMANDS = [path for path, _ in PARSERS if path]


def rendered(p: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help text of ``action`` as ``--help`` prints it (defaults expanded), on one line."""
    formatter = p._get_formatter()
    return " ".join(formatter._expand_help(action).split())


def options(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in p._actions if a.help != argparse.SUPPRESS and not isinstance(a, argparse._SubParsersAction)]


def test_the_walk_finds_every_command() -> None:
    assert {"wallet serve", "provider serve", "run", "scenarios", "check", "replay", "load", "dialect check",
            "dialect sample", "dialect list", "sandbox", "demo"} <= {" ".join(c) for c in COMMANDS}


@pytest.mark.parametrize("path", [p for p, _ in PARSERS], ids=lambda p: " ".join(p) or "croupier")
def test_every_option_has_help_showing_its_default(path: tuple[str, ...]) -> None:
    p = dict(PARSERS)[path]
    problems = []
    for action in options(p):
        name = "/".join(action.option_strings) or action.dest
        text = rendered(p, action)
        if not text.strip():
            problems.append(f"{name}: no help")
            continue
        if cli.has_default(action) and str(action.default) not in text:
            problems.append(f"{name}: default {action.default!r} not in {text!r}")
    assert not problems, problems


@pytest.mark.parametrize("path", [p for p, _ in PARSERS], ids=lambda p: " ".join(p) or "croupier")
def test_no_rest_markup_in_any_help(path: tuple[str, ...]) -> None:
    p = dict(PARSERS)[path]
    texts = [p.description or "", p.epilog or "", p.format_help()]
    texts += [rendered(p, a) for a in options(p)]
    assert not [t for t in texts if "``" in t]


def test_the_help_formatter_shows_defaults_and_leaves_none_alone() -> None:
    p = cli.Parser(prog="x")
    p.add_argument("--n", type=int, default=7, help="how many")
    p.add_argument("--flag", action="store_true", help="a switch")
    p.add_argument("--name", help="a name")
    p.add_argument("--mode", default="a", help="a mode (default: a, the usual)")
    text = " ".join(p.format_help().split())
    assert "how many (default: 7)" in text
    assert "a switch (default" not in text and "a name (default" not in text
    assert "(default: a, the usual)" in text and "(default: a) " not in text


def test_every_command_help_exits_0() -> None:
    """``croupier <cmd> --help`` for each command, in one child process (one interpreter start, not 13)."""
    code = (
        "import sys\nfrom simulator.commands import cli\nbad = []\n"
        f"for words in {[list(c) for c in COMMANDS]!r}:\n"
        "    try:\n        cli.main([*words, '--help'])\n"
        "    except SystemExit as e:\n        (e.code in (0, None)) or bad.append((words, e.code))\n"
        "    else:\n        bad.append((words, 'no exit'))\n"
        "print('BAD', bad, file=sys.stderr) if bad else None\nsys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout.count("usage: croupier") == len(COMMANDS)


def test_top_level_help_has_the_exit_codes_and_no_markup() -> None:
    out = subprocess.run([sys.executable, "-m", "simulator", "--help"], capture_output=True, text=True, timeout=30,
                         check=False)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    assert "``" not in text and "130 interrupted" in text

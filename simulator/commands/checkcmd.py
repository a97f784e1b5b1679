"""The ``croupier check`` and ``croupier replay`` commands: options, report files, exit codes.

Exit codes: 0 no counterexample that fails the check (money or contract; notes too with
``--fail-on note``) (replay: the sequence passes now), 1 such a counterexample (replay: it still
fails), 2 bad usage (an unknown rule id), an unreadable file, an unreachable wallet, or a check
that ended with an error; 130 interrupted (SIGINT or SIGTERM): the search stops at once and what was
found so far is reported, in every report asked for, marked ``interrupted``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from ..check.runner import CheckOptions, CheckResult, StopRequest
from ..check.target import CheckError, Target, admin_url_for
from ..run.accounts import RunError, read_accounts
from . import flags

DEFAULT_OUT = ".croupier/check"


def user_cache_dir() -> Path:
    """croupier's per-user cache folder (``$XDG_CACHE_HOME/croupier``, else ``~/.cache/croupier``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "croupier"


def keep_hypothesis_out_of_cwd() -> None:
    """Point Hypothesis's own storage (its caches of constants and character maps, and any database it
    would make itself) at :func:`user_cache_dir` instead of ``./.hypothesis``.

    Why: ``croupier check`` is a command run from wherever the user stands, not a test suite in a
    project; it must leave only what it says it writes (the report files, the replay files under
    ``--out``).  Its own example database is ``--db-dir``, which is in the same cache by default."""
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(user_cache_dir() / "hypothesis")


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return value

    return parse


def _target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wallet", default="http://127.0.0.1:8080/wallet", help="the wallet's protocol base URL")
    flags.wire_and_credentials(p, "for fresh players")
    flags.client_tls_args(p)
    p.add_argument("--players", dest="players_file",
                   help="CSV of test accounts player_id,token,currency, for a wallet without the admin API")
    p.add_argument("--timeout", type=_positive(float), default=10.0, help="seconds per call (default: %(default)s)")
    p.add_argument("--strict-codes", action="store_true",
                   help="expect the reference wallet's order of checks (docs/wallet-rules.md) when a call breaks "
                        "two rules, instead of accepting any code that applies")
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write the report as JSON to PATH")
    p.add_argument("--junit", dest="junit_path", metavar="PATH",
                   help="write a JUnit XML report to PATH (one test case per rule)")
    p.add_argument("--quiet", action="store_true", help="print nothing (exit code and files only)")


def add_check_parsers(sub: Any) -> None:
    c = sub.add_parser("check", help="find a wallet's money bugs with Hypothesis, each shrunk to a minimal sequence",
                       description="Drive a Hypothesis state machine against a wallet over HTTP; report each broken "
                                   "rule of PROTOCOL.md with its minimal sequence, a replay file and curl commands.")
    _target_args(c)
    c.add_argument("--max-examples", type=_positive(int), default=None,
                   help="sequences to search at most (default: no limit, the budget decides)")
    c.add_argument("--budget", type=float, default=60.0,
                   help="seconds to search; 0 for no limit. Shrinking is on top: each broken rule found adds up "
                        "to --shrink-time seconds, so a check that finds bugs runs longer (default: %(default)s)")
    c.add_argument("--shrink-time", type=_positive(float), default=30.0,
                   help="seconds to shrink each counterexample, on top of --budget; then the search goes on for "
                        "the rules not broken yet (default: %(default)s)")
    c.add_argument("--rules", help="comma list of rule ids or prefixes (idempotency-,sessions-...) to judge and "
                                   "seek; default: every rule")
    c.add_argument("--skip-rules", help="comma list of rule ids or prefixes not to judge nor seek")
    c.add_argument("--list-rules", action="store_true", help="print the rule ids with their PROTOCOL.md text, exit")
    c.add_argument("--fail-on", choices=["money", "contract", "note"], default="contract",
                   help="the mildest severity that fails the check (exit 1): money, contract (default), or note")
    c.add_argument("--seed", type=int, help="reproduce a run's search (default: random, printed)")
    c.add_argument("--steps", type=_positive(int), default=10, help="rules per sequence (default: %(default)s)")
    c.add_argument("--db-dir", default=str(user_cache_dir() / "check-examples"),
                   help="Hypothesis example database, a per-user cache: a failure found once is tried first next "
                        "time, from any directory (default: %(default)s)")
    c.add_argument("--no-db", action="store_true", help="keep no example database")
    c.add_argument("--out", default=DEFAULT_OUT,
                   help="where each failure's replay file and curl script go (default: %(default)s)")

    r = sub.add_parser("replay", help="run a replay file from `croupier check` again",
                       description="Run a minimal sequence saved by `croupier check` against a wallet: exit 1 if it "
                                   "still breaks the rule, 0 if it passes now.")
    r.add_argument("file", help="a replay file (JSON) written by croupier check")
    _target_args(r)


def _target(args: argparse.Namespace) -> Target:
    accounts = read_accounts(args.players_file) if args.players_file else None
    admin_url = args.admin_url
    if admin_url is None and accounts is None:
        admin_url = admin_url_for(args.wallet)
    from ..protocol import dialects

    dialects.get(args.dialect, "x")  # an unknown dialect is bad usage
    return Target(
        args.wallet, flags.secret(args), args.dialect,
        admin_url if accounts is None else None,
        flags.admin_token(args) if accounts is None else None,
        accounts, args.timeout, flags.client_tls(args),
    )


def _fail_usage(message: str) -> int:
    print(f"croupier: {message}", file=sys.stderr)
    return 2


def list_rules() -> str:
    from ..protocol.findings import RULES

    return "\n".join(f"{r.id:<38} {r.title}  (PROTOCOL.md, {r.section})" for r in RULES.values())


def check_command(args: argparse.Namespace) -> int:
    """``croupier check``: SIGINT and SIGTERM stop the search (the first; later ones are noted while the
    reports are written, which takes a moment) and what was found so far is reported."""
    from .interrupt import Interrupts

    stop = StopRequest()
    with Interrupts() as interrupts:
        interrupts.listen(lambda name, count: stop.request(name))
        return _check_command(args, stop)


def _check_command(args: argparse.Namespace, stop: StopRequest) -> int:
    from ..check.runner import UnknownRule, check, select_rules, split_rules

    if args.list_rules:
        print(list_rules())
        return 0
    rules, skip = split_rules(args.rules), split_rules(args.skip_rules) or []
    try:
        selected = select_rules(rules, skip)
    except UnknownRule as exc:
        return _fail_usage(f"{exc}\n(--list-rules prints them with their PROTOCOL.md sections)")
    if not selected:
        return _fail_usage("--rules / --skip-rules leave no rule to check")
    try:
        target = _target(args)
    except (RunError, ValueError) as exc:
        return _fail_usage(str(exc))
    options = CheckOptions(
        max_examples=args.max_examples, budget_s=args.budget if args.budget > 0 else None, seed=args.seed,
        db_dir=None if args.no_db else args.db_dir, steps=args.steps, shrink_s=args.shrink_time,
        strict_codes=args.strict_codes, rules=rules, skip_rules=skip, fail_on=args.fail_on, stop=stop,
    )
    if not args.quiet and sys.stderr.isatty():
        budget = f"{options.budget_s:.0f} s of searching" if options.budget_s else "no time limit"
        most = f"up to {options.max_examples} sequences, " if options.max_examples else ""
        shrink = f" (+ up to {options.shrink_s:g} s of shrinking per broken rule found)" if options.budget_s else ""
        print(f"croupier check: {target.wallet_url}: {most}{budget}{shrink}, {len(selected)} rules…", file=sys.stderr)
    from ..check.target import Connection

    try:
        conn = Connection(target).open()
    except CheckError:
        conn = None  # check() opens its own and reports why it could not, as it always has
    if conn is not None:
        try:
            if signature_refused(conn):
                return _fail_usage(_WRONG_SECRET.format(url=target.wallet_url))
            result = check(target, options, conn)
        finally:
            conn.close()
    else:
        result = check(target, options)
    paths = {}
    if result.failures:
        from ..check.report import write_failures

        try:
            paths = write_failures(result, args.out, target.secret, target.admin_url, target.admin_token, target.tls)
        except OSError as exc:
            result.errors.append(f"cannot write to {args.out}: {exc.strerror}")
    return _finish(args, result, paths, "check")


_WRONG_SECRET = ("the wallet at {url} refused croupier's signature on every call (INVALID_SIGNATURE): "
                 "check --secret (or CROUPIER_SECRET), it must be the wallet's shared secret")


def signature_refused(conn: Any) -> bool:
    """Every signed call refused ``INVALID_SIGNATURE`` at the start: the secret is wrong, not the wallet.

    Two calls that need nothing valid but the signature (an unknown launch token, an unknown player):
    a wallet with the right secret answers them ``INVALID_TOKEN`` / ``PLAYER_NOT_FOUND``…; only when
    both are refused for their signature is the check not run (a wallet refusing some signatures is judged).
    """
    from ..protocol.calls import Rejected, WalletCall
    from ..protocol.codes import ErrorCode

    probes = [WalletCall.authenticate("croupier-signature-probe", "croupier-probe"),
              WalletCall.balance("croupier-signature-probe", "croupier-signature-probe")]
    try:
        answers = [conn.send(call).outcome for call in probes]
    except Exception:  # noqa: BLE001 - a wire that cannot carry a probe: the check judges the wallet
        return False
    return all(isinstance(a, Rejected) and a.code is ErrorCode.INVALID_SIGNATURE for a in answers)


def replay_command(args: argparse.Namespace) -> int:
    from ..check.replay import load, replay

    try:
        target = _target(args)
        doc = load(args.file)
    except (RunError, CheckError, ValueError) as exc:
        return _fail_usage(str(exc))
    from ..check.target import Connection

    try:
        conn = Connection(target).open()
    except CheckError:
        conn = None  # replay() reports why it could not reach the wallet, as it always has
    if conn is not None:
        try:
            refused = signature_refused(conn)
        finally:
            conn.close()
        if refused:
            return _fail_usage(_WRONG_SECRET.format(url=target.wallet_url))
    result = replay(doc, target, args.strict_codes)
    if not args.quiet and result.verdict != "error":
        print(f"recorded failure ({args.file}): {doc.get('rule')} — {doc.get('message', '')}")
    return _finish(args, result, {}, "replay")


def _finish(args: argparse.Namespace, result: CheckResult, paths: dict[str, dict[str, str]], command: str) -> int:
    from ..check.report import junit_xml, render_text, result_json

    try:
        if args.json_path:
            Path(args.json_path).write_bytes(orjson.dumps(result_json(result, paths), option=orjson.OPT_INDENT_2))
        if args.junit_path:
            Path(args.junit_path).write_bytes(junit_xml(result, f"croupier.{command}"))
    except OSError as exc:
        result.errors.append(f"cannot write the report: {exc.strerror}")
    if not args.quiet:
        text = render_text(result, paths, command)
        stream = sys.stderr if result.verdict == "error" else sys.stdout
        print(text, file=stream)
    return result.exit_code

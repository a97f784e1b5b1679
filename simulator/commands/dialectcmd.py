"""``croupier dialect check FILE`` and ``croupier dialect sample FILE|NAME``.

Before aiming croupier at a real wallet a user wants two answers: is my dialect
file right (every problem named at once, exit 2 if not), and what exactly will
croupier send (one signed request per operation, printed as HTTP)?
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from ..protocol import dialects
from ..protocol.calls import Op, WalletCall, WinReason
from ..protocol.dialects import DialectError
from ..protocol.dialects.semantics import Semantics
from ..protocol.money import Money, currency
from ..protocol.signing import DEV_SECRET

SAMPLE_NOW = 1_700_000_000.0
"""A fixed clock, so a sample is the same every time it is printed."""


def add_dialect_parser(sub: Any) -> None:
    d = sub.add_parser("dialect", help="wallet dialects: validate a dialect file, show the requests croupier sends",
                       description="Wallet dialects: the wire formats croupier speaks besides the canonical one.")
    dsub = d.add_subparsers(dest="dialect_command", required=True, metavar="COMMAND")
    check = dsub.add_parser("check", help="validate a TOML dialect file (exit 2 with every problem if invalid)")
    check.add_argument("file", help="the TOML dialect file to validate")
    sample = dsub.add_parser("sample", help="print the request croupier would send for each operation")
    sample.add_argument("dialect", help="a built-in name or a .toml dialect file")
    sample.add_argument("--secret", default=DEV_SECRET, help="secret to sign the samples with")
    dsub.add_parser("list", help="the built-in dialects")


def sample_calls(cur: str) -> list[WalletCall]:
    """One call per operation and per kind of win (so every wire endpoint shows up)."""
    amount = Money(10 ** currency(cur).exponent * 12 + (34 if currency(cur).exponent >= 2 else 0), currency(cur))
    calls = [
        WalletCall.authenticate("launch-token-1", "slot-1"),
        WalletCall.balance("player-1", "session-1"),
        WalletCall.bet("tx-1", "player-1", "session-1", "slot-1", "round-1", amount),
    ]
    for reason in WinReason:
        calls.append(WalletCall.win(f"tx-{reason}", "player-1", "session-1", "slot-1", "round-1", amount, reason))
    calls.append(WalletCall.win("tx-close", "player-1", "session-1", "slot-1", "round-1", amount, round_closed=True))
    calls.append(WalletCall.win("tx-lost", "player-1", "session-1", "slot-1", "round-1", Money(0, amount.currency),
                                round_closed=True))
    calls.append(WalletCall.rollback("tx-rb", "tx-1", "player-1", "session-1", "slot-1", "round-1"))
    return calls


def as_meant(call: WalletCall, sem: Semantics) -> WalletCall:
    """``call`` with what the dialect's semantics add: the bet a regular win names, a rollback's amount,
    a second session id (the samples' bet is ``tx-1``)."""
    call = dataclasses.replace(call, session_ref="session-ref-1", currency_hint="EUR")
    if call.op is Op.WIN and call.reason is WinReason.REGULAR and sem.win_bet != "none":
        call = dataclasses.replace(call, bet_tx_id="tx-1")
    if call.op is Op.ROLLBACK and sem.rollback_amount:
        amount = sample_calls("EUR")[2].amount
        call = dataclasses.replace(call, amount=amount)
    return call


def render_samples(name: str, secret: str) -> str:
    d = dialects.get(name, secret)
    sem = dialects.semantics_of(d)
    cur = "EUR" if dialects.carries(d, currency("EUR")) else "JPY"
    head = f"# dialect {d.name}: one request per operation (signed with the given secret, clock {int(SAMPLE_NOW)})"
    out: list[str] = [head, "#", "# semantics (what the calls carry and mean; docs/dialects.md):"]
    out.extend(f"#   {line}" for line in sem.describe())
    for call in sample_calls(cur):
        if call.op is Op.AUTHENTICATE and sem.sessions == "operator":
            out.append("\n# authenticate: none (the operator makes the sessions)")
            continue
        try:
            req = d.encode_call(as_meant(call, sem), SAMPLE_NOW)
        except DialectError as exc:
            out.append(f"\n# {call.op}: not sent on this wire ({exc})")
            continue
        what = str(call.op)
        if call.op.value == "win":
            what += f" ({call.reason}, amount {call.amount}{', closes the round' if call.round_closed and sem.rounds else ''})"
        elif call.amount is not None:
            what += f" (amount {call.amount})"
        out.append(f"\n## {what}\n{req.method} /{req.path}")
        out.extend(f"{k}: {v}" for k, v in req.headers.items())
        if req.body or req.method != "GET":  # a GET carries its fields in the query
            out.append("")
            out.append(req.body.decode("utf-8", "replace"))
    batching = dialects.batching(d)
    if batching is not None:
        calls = sample_calls(cur)
        bet, win = calls[2], calls[-3]  # a bet and the win that closes its round
        req = batching.encode_batch([bet, win], SAMPLE_NOW)
        out.append(f"\n## batch: a bet and its closing win in one request (applied in order)\n{req.method} /{req.path}")
        out.extend(f"{k}: {v}" for k, v in req.headers.items())
        out.append("")
        out.append(req.body.decode("utf-8", "replace"))
    return "\n".join(out) + "\n"


def dialect_command(args: argparse.Namespace) -> int:
    if args.dialect_command == "list":
        for n in dialects.names():
            print(n)
        return 0
    if args.dialect_command == "check":
        return check_file(args.file)
    try:
        text = render_samples(args.dialect, args.secret)
    except ValueError as exc:
        print(f"croupier: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def check_file(path: str) -> int:
    """Validate a dialect file: 0 and a one-line summary, or 2 and every problem, one a line."""
    from ..protocol.dialects.spec import SpecError, load_file

    try:
        spec = load_file(path)
    except OSError as exc:
        print(f"croupier: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except SpecError as exc:
        print(f"{path}: invalid dialect ({len(exc.problems)} problem{'s' if len(exc.problems) > 1 else ''}):",
              file=sys.stderr)
        for p in exc.problems:
            print(f"  - {p}", file=sys.stderr)
        return 2
    amounts = spec.amount + (f" ({spec.places} places)" if spec.amount not in ("minor", "minor-string") else "")
    print(f"{path}: ok - dialect {spec.name}: {len(spec.operations)} operations, {spec.format} requests, "
          f"amounts {amounts}, signature {spec.scheme}")
    differs = spec.semantics.differences()
    print("  semantics: " + (", ".join(f"{k} = {_toml(v)}" for k, v in differs) if differs else "PROTOCOL.md's"))
    return 0


def _toml(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else f'"{value}"'

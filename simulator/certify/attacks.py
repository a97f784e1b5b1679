"""The security pass's catalogue and judge: which attacks a dialect can be sent, and what each answer means.

Pure: no I/O (:mod:`simulator.certify.security` sends the requests and reads the balances).  Every attack is
a request a provider's gateway could be made to forward, built on one valid call (a bet, mostly) of a player
croupier holds: a bad signature, an attack string in one id field, an amount of the wrong kind, a body too
large or too deep, another player's session.  Each is judged by PROTOCOL.md's text only, and every failure
quotes it (:data:`simulator.protocol.findings.RULES`):

* an attack the protocol says must be refused passes when it is refused (HTTP 4xx, a protocol code: any code of
  a rule the call breaks, "Where a wallet may choose") **and** nothing changed (the balances read before and
  after, through the protocol and the admin API where there is one);
* an attack the protocol does not forbid (an odd character in an id: PROTOCOL.md says nothing about which
  characters an id may hold) passes when it is refused with nothing changed, or accepted with exactly the call's
  effect;
* HTTP 5xx, a timeout or an answer that cannot be read fails: "Definitive rejections are HTTP 4xx … and change
  nothing";
* a request the wallet refused is then sent as it should have been (same ``tx_id``, signed correctly) where that
  makes sense: it must be accepted, "A rejected call is not recorded: sent again, it is judged again".
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import orjson

from ..check.wire import without_signature
from ..play.faults import CIRCUMSTANTIAL
from ..protocol import signing
from ..protocol.calls import Ok, Op, Outcome, Rejected, Unknown, WalletCall, WinReason
from ..protocol.codes import ErrorCode
from ..protocol.dialects import Dialect, DialectError, HttpRequest, variants
from ..protocol.dialects.canonical import JSON_HEADERS, call_to_json
from ..protocol.findings import RULES, Severity
from ..protocol.money import INT64_MAX, Money

# -- vocabulary ---------------------------------------------------------------------------------------------


class Group(StrEnum):
    SIGNATURES = "signatures"
    IDS = "ids"
    AMOUNTS = "amounts"
    BODIES = "bodies"
    SESSIONS = "sessions"


GROUP_TITLES: Final[dict[Group, str]] = {
    Group.SIGNATURES: "Signatures: unsigned, forged, tampered, stale and replayed requests",
    Group.IDS: "Attack strings in every id field: SQL and script injection, path traversal, 1,000 characters, "
               "non-ASCII, NUL and control characters",
    Group.AMOUNTS: "Amounts: negative, fractional, strings, past 64 bits",
    Group.BODIES: "Bodies: oversized, deeply nested, not UTF-8",
    Group.SESSIONS: "Sessions: a bet with another player's session",
}
CHECKLIST: Final[dict[Group, tuple[str, ...]]] = {
    Group.SIGNATURES: ("authentication tested", "fraud prevention"),
    Group.IDS: ("error handling reviewed", "fraud prevention"),
    Group.AMOUNTS: ("error handling reviewed", "fraud prevention"),
    Group.BODIES: ("error handling reviewed",),
    Group.SESSIONS: ("access controls verified", "fraud prevention"),
}
"""The operators' go-live checklist items each group bears on (issue 18): a suggestion for certify's report."""


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_TESTED = "not tested"


class Expect(StrEnum):
    """What PROTOCOL.md allows as the answer to an attack."""

    REFUSE = "refuse"
    """Refused (with a code of ``Attack.codes``; any protocol code when it is empty), nothing changed."""
    REFUSE_OR_APPLY = "refuse-or-apply"
    """Refused with nothing changed, or accepted with exactly the call's effect (nothing forbids the call)."""
    REPLAY = "replay"
    """The same bytes again: answered as a replay (HTTP 200, the original wallet_tx_id, nothing changed)."""
    REFUSE_OR_REPLAY = "refuse-or-replay"
    """Refused with INVALID_SIGNATURE, or answered as a replay; either way nothing changed."""


class Sign(StrEnum):
    """How an attack's request is signed."""

    OK = "ok"
    UNSIGNED = "unsigned"
    WRONG_SECRET = "wrong-secret"
    TAMPERED = "tampered"
    STALE = "stale"
    FUTURE = "future"
    REPLAY = "replay"
    REPLAY_AFTER_WINDOW = "replay-after-window"


STALE_S: Final = 3600
"""How far from now a stale or future signature is: far outside the 300 s window, so that clock skew between
croupier and the wallet cannot matter."""
WINDOW_S: Final = signing.TOLERANCE_S
BET_MINOR: Final = 100
"""The amount of the bets the attacks are built on (1.00 EUR)."""
OPENING_MINOR: Final = 100_000
"""The opening balance of the players the pass makes (admin API)."""
NESTING: Final = 30_000
"""How deep the deeply nested bodies are: 60 KB of brackets, under the 64 KiB limit."""

_Q_DEFINITIVE: Final = "errors-codes"
"""Quoted when a call that is due to be refused gets no definitive answer: "Definitive rejections are HTTP
4xx … and change nothing"."""
_Q_VALID: Final = "errors-definitive"
"""Quoted when a call that may be valid gets no definitive answer (also "HTTP 5xx … outcome unknown")."""


# -- the attacks ----------------------------------------------------------------------------------------------

ATTACK_STRINGS: Final[dict[str, str]] = {
    "sql-or": "' OR '1'='1' --",
    "sql-drop": "x'); DROP TABLE transactions; --",
    "script": "<script>alert(1)</script>",
    "path-traversal": "../../../../etc/passwd",
    "long-1000": "L" * 1000,
    "non-ascii": "ünïcødé-日本語-😀-ﷺ",
    "nul": "nul\x00byte",
    "control": "ctl\r\nX-Injected: 1\t\x1b[31m\x7f",
}
"""The attack strings sent in every id field (each made unique per pass, its payload kept: see :func:`id_value`)."""

ID_FIELDS: Final[dict[str, Op]] = {
    "tx_id": Op.BET, "round_id": Op.BET, "game_id": Op.BET, "player_id": Op.BET, "session_token": Op.BET,
    "ref_tx_id": Op.ROLLBACK, "token": Op.AUTHENTICATE,
}
"""Every id field of the protocol, and the call it is attacked on."""


@dataclass(frozen=True, slots=True)
class Attack:
    group: Group
    name: str
    what: str
    """What it is, for a reader."""
    expect: Expect
    rule: str
    """The rule of PROTOCOL.md a wrong answer breaks (its id in RULES)."""
    codes: frozenset[ErrorCode] = frozenset()
    """The codes of every rule the call breaks (empty: any protocol code of a refusal)."""
    code_rule: str = ""
    """The rule that names those codes, quoted when the refusal carries another code ("": ``rule``)."""
    op: Op = Op.BET
    field: str = ""
    """The id field an attack string is put in."""
    value: str = ""
    """The attack string (its payload; :func:`id_value` makes it unique)."""
    variant: str = ""
    """A malformed variant of the dialect (:meth:`VariantDialect.encode_variant`) or a raw body (``nested-*``)."""
    sign: Sign = Sign.OK
    follow_up: bool = False
    """Once refused, the call is sent again as it should have been (signed, same tx_id): it must be accepted."""
    big_win: int = 0
    """A win of this amount (the 64-bit attacks), on a player of its own."""
    skip: str = ""
    """Why it is not tested ("" when it is)."""

    @property
    def key(self) -> str:
        return f"{self.group}/{self.name}"


@dataclass(frozen=True, slots=True)
class Wire:
    """What the security pass needs to know about the wallet and its dialect (all probed without I/O)."""

    dialect: str = "canonical"
    timed: bool = True
    """The signature binds a time (stale, future and after-the-window replays mean something)."""
    canonical_json: bool = True
    """The wire is PROTOCOL.md's JSON with ``X-Signature``: raw bodies can be built and signed."""
    names_player: bool = True
    """Calls name the player (a session of another player can be sent with a player's id)."""
    fresh_players: bool = True
    """Players are made by the admin API (a player of its own for the 64-bit wins)."""
    two_players: bool = True
    authenticates: bool = True
    """Sessions come from an ``authenticate`` call (not from the operator)."""
    largest: int = INT64_MAX
    """The largest amount the wire carries in the pass's currency."""


def catalogue(wire: Wire) -> list[Attack]:
    """Every attack, in the order they are sent; those ``wire`` cannot carry have ``skip`` set."""
    sig = RULES["transport-signature"]
    invalid_sig = frozenset({ErrorCode.INVALID_SIGNATURE})
    no_time = "" if wire.timed else f"not tested: the {wire.dialect} dialect's signature binds no time"
    out: list[Attack] = [
        Attack(Group.SIGNATURES, "unsigned", "a bet without its signature", Expect.REFUSE, sig.id, invalid_sig,
               sign=Sign.UNSIGNED, follow_up=True),
        Attack(Group.SIGNATURES, "wrong-secret", "a bet signed with another secret", Expect.REFUSE, sig.id,
               invalid_sig, sign=Sign.WRONG_SECRET, follow_up=True),
        Attack(Group.SIGNATURES, "tampered", f"a bet of {BET_MINOR} signed, then its amount changed to "
               f"{BET_MINOR * 100} (the signature of the first body on the second)", Expect.REFUSE, sig.id,
               invalid_sig, sign=Sign.TAMPERED, follow_up=True),
        Attack(Group.SIGNATURES, "stale", f"a bet signed {STALE_S} s ago (the window is {WINDOW_S} s)",
               Expect.REFUSE, sig.id, invalid_sig, sign=Sign.STALE, follow_up=True, skip=no_time),
        Attack(Group.SIGNATURES, "future", f"a bet signed {STALE_S} s ahead", Expect.REFUSE, sig.id, invalid_sig,
               sign=Sign.FUTURE, follow_up=True, skip=no_time),
        Attack(Group.SIGNATURES, "replay-in-window", "an accepted bet's exact bytes sent again at once (within "
               "the window it is a replay)", Expect.REPLAY, "idempotency-1-no-change", sign=Sign.REPLAY),
        Attack(Group.SIGNATURES, "replay-after-window", f"an accepted bet's exact bytes sent again once its "
               f"signature is more than {WINDOW_S} s old", Expect.REFUSE_OR_REPLAY, sig.id, invalid_sig,
               sign=Sign.REPLAY_AFTER_WINDOW, skip=no_time),
    ]
    for fld, op in ID_FIELDS.items():
        for name, value in ATTACK_STRINGS.items():
            out.append(_id_attack(wire, fld, op, name, value))
    minor = RULES["money-minor-units"]
    bad = frozenset({ErrorCode.BAD_REQUEST})
    out += [
        Attack(Group.AMOUNTS, "negative", "a bet of a negative amount", Expect.REFUSE, minor.id,
               variant="amount-negative", follow_up=True),
        Attack(Group.AMOUNTS, "fractional", "a bet of a fractional amount (a JSON float)", Expect.REFUSE, minor.id,
               bad, variant="amount-float", follow_up=True, code_rule="transport-bad-request"),
        Attack(Group.AMOUNTS, "string", "a bet whose amount is a string", Expect.REFUSE, minor.id, bad,
               variant="amount-string", follow_up=True, code_rule="transport-bad-request"),
        Attack(Group.AMOUNTS, "bet-past-64-bits", "a bet of 2^63 (past a signed 64-bit integer)", Expect.REFUSE,
               "idempotency-7-never-negative", variant="amount-past-64-bit", follow_up=True),
        Attack(Group.AMOUNTS, "win-past-64-bits", "a win of 2^63 (past a signed 64-bit integer)",
               Expect.REFUSE_OR_APPLY, "operations-effect", op=Op.WIN, variant="amount-past-64-bit",
               big_win=INT64_MAX + 1, skip=_big_skip(wire, INT64_MAX + 1)),
        Attack(Group.AMOUNTS, "balance-past-64-bits", f"a win of 2^63-1 on a balance of {BET_MINOR}: the balance "
               "would pass 2^63-1", Expect.REFUSE_OR_APPLY, "idempotency-7-never-negative", op=Op.WIN,
               big_win=INT64_MAX, skip=_big_skip(wire, INT64_MAX)),
    ]
    raw_only = "" if wire.canonical_json else (
        f"not tested: the {wire.dialect} dialect's body is built and signed by its own encoder; croupier builds "
        "raw bodies only for the canonical wire")
    out += [
        Attack(Group.BODIES, "oversized", "a bet followed by spaces up to 64 KiB + 17 bytes", Expect.REFUSE,
               "transport-bad-request", bad, variant="oversized", follow_up=True),
        Attack(Group.BODIES, "nested-field", f"a bet with an unknown field nested {NESTING} arrays deep",
               Expect.REFUSE_OR_APPLY, "transport-unknown-fields", variant="nested-field", skip=raw_only),
        Attack(Group.BODIES, "nested-body", f"a bet's object inside {NESTING} arrays (the body is not an object)",
               Expect.REFUSE, "transport-bad-request", bad, variant="nested-body", follow_up=True, skip=raw_only),
        Attack(Group.BODIES, "invalid-utf8", "a bet whose tx_id holds bytes that are no UTF-8", Expect.REFUSE_OR_APPLY,
               "operations-effect", variant="invalid-utf8", skip=raw_only),
    ]
    other = ("" if wire.names_player and wire.two_players else
             f"not tested: the {wire.dialect} dialect's session names the player" if not wire.names_player else
             "not tested: needs two players (the admin API, or two accounts in the players file)")
    out.append(Attack(Group.SESSIONS, "other-players-session", "a bet of one player with another player's live "
                      "session", Expect.REFUSE, "sessions-bet-needs-live-session",
                      frozenset({ErrorCode.INVALID_TOKEN, ErrorCode.SESSION_EXPIRED}), follow_up=True, skip=other))
    return out


def _big_skip(wire: Wire, amount: int) -> str:
    if not wire.fresh_players:
        return ("not tested: a win this large would stay on a test account of the players file; it needs a player "
                "of its own (the admin API)")
    if min(amount, INT64_MAX) > wire.largest:
        return f"not tested: the {wire.dialect} dialect carries amounts up to {wire.largest} only"
    return ""


def _id_attack(wire: Wire, fld: str, op: Op, name: str, value: str) -> Attack:
    payload = f"{len(value):,} × {value[0]!r}" if len(value) > 100 else ascii(value)
    what = f"{'a bet' if op is Op.BET else 'a rollback' if op is Op.ROLLBACK else 'authenticate'} with " \
           f"{fld} = {payload} ({name}; a nonce of the pass in front)"
    if fld in ("tx_id", "round_id", "game_id"):
        return Attack(Group.IDS, f"{fld}:{name}", what, Expect.REFUSE_OR_APPLY, "operations-effect", op=op,
                      field=fld, value=value)
    if fld == "ref_tx_id":  # a bet never seen: 200, nothing changed (rule 5), or a refusal
        return Attack(Group.IDS, f"{fld}:{name}", f"{what} (a bet never seen)", Expect.REFUSE_OR_APPLY,
                      "idempotency-5-tombstone", op=op, field=fld, value=value)
    if fld == "player_id":
        skip = "" if wire.names_player else f"not tested: the {wire.dialect} dialect's calls name no player"
        return Attack(Group.IDS, f"{fld}:{name}", f"{what} (no such player), the session of a real one",
                      Expect.REFUSE, "operations-unknown-player", op=op, field=fld, value=value, skip=skip)
    if fld == "session_token":
        return Attack(Group.IDS, f"{fld}:{name}", f"{what} (no such session)", Expect.REFUSE,
                      "sessions-bet-needs-live-session", op=op, field=fld, value=value)
    skip = "" if wire.authenticates else (f"not tested: the {wire.dialect} dialect has no authenticate call (the "
                                         "operator makes the sessions)")
    return Attack(Group.IDS, f"{fld}:{name}", f"{what} (no such launch token)", Expect.REFUSE,
                  "operations-authenticate", op=op, field=fld, value=value, skip=skip)


def id_value(attack: Attack, nonce: str) -> str:
    """The attack string made unique to one pass and field, its payload intact (a 1,000-character id stays
    1,000 characters long)."""
    unique = f"{nonce}{_SHORT.get(attack.field, '')}"
    if attack.name.endswith(":long-1000"):
        return (unique + attack.value)[: len(attack.value)]
    return f"{unique}-{attack.value}"


_SHORT: Final = {"tx_id": "t", "round_id": "r", "game_id": "g", "player_id": "p", "session_token": "s",
                 "ref_tx_id": "f", "token": "k"}
"""Each field's letter in its attack strings' nonce: no two fields of a pass share an id (a rollback's ref_tx_id
must not name the bet of the tx_id attack)."""


# -- the calls and the requests -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seat:
    """A player croupier holds: its id, its live session and its currency."""

    player_id: str
    session: str
    currency: str
    session_ref: str | None = None


def base_call(attack: Attack, seat: Seat, other: Seat | None, tx_id: str, round_id: str, game_id: str,
              nonce: str) -> WalletCall:
    """The valid call an attack is built on, with its attack string (if any) in place."""
    if attack.op is Op.AUTHENTICATE:
        return WalletCall(Op.AUTHENTICATE, token=id_value(attack, nonce), game_id=game_id,
                          currency_hint=seat.currency)
    session = other.session if attack.group is Group.SESSIONS and other is not None else seat.session
    fields: dict[str, Any] = {"tx_id": tx_id, "player_id": seat.player_id, "session_token": session,
                              "game_id": game_id, "round_id": round_id, "session_ref": seat.session_ref,
                              "currency_hint": seat.currency}
    if attack.field:
        fields[attack.field] = id_value(attack, nonce)
    if attack.op is Op.ROLLBACK:
        ref = fields.pop("ref_tx_id", f"{tx_id}-never-sent")
        return WalletCall(Op.ROLLBACK, ref_tx_id=ref, **fields)
    if attack.op is Op.WIN:
        amount = Money.of(min(attack.big_win, INT64_MAX) or BET_MINOR, seat.currency)
        return WalletCall(Op.WIN, amount=amount, reason=WinReason.PROMO, round_closed=True, **fields)
    return WalletCall(Op.BET, amount=Money.of(BET_MINOR, seat.currency), **fields)


def effect(call: WalletCall, attack: Attack) -> int:
    """What the call does to the balance when it is accepted."""
    if call.op is Op.BET and call.amount is not None:
        return -call.amount.minor
    if call.op is Op.WIN:
        return attack.big_win or (call.amount.minor if call.amount else 0)
    return 0


def carries(dialect: Dialect, call: WalletCall, fld: str) -> bool:
    """Whether ``dialect``'s request for ``call`` carries the value of ``fld`` at all (some wires name no player,
    no game...): a marker put in the field must show in the path, a header or the body."""
    marker = "croupierMARKER7q"
    try:
        req = dialect.encode_call(_replace(call, fld, marker), 0.0)
    except DialectError:
        return False
    return marker in req.path or marker.encode() in req.body or any(marker in v for v in req.headers.values())


def _replace(call: WalletCall, fld: str, value: str) -> WalletCall:
    fields: dict[str, Any] = {fld: value}
    return replace(call, **fields)


def request(attack: Attack, dialect: Dialect, wrong: Dialect, secret: str, call: WalletCall,
            now: float) -> HttpRequest:
    """The request of ``attack`` for ``call`` at unix time ``now`` (``DialectError``: the wire cannot carry it)."""
    if attack.variant in RAW_BODIES:
        return raw_body(secret, call, now, attack.variant)
    if attack.variant:
        vd = variants(dialect)
        if vd is None:
            raise DialectError(f"the {dialect.name} dialect sends no malformed variants")
        try:
            return vd.encode_variant(call, now, attack.variant)
        except (TypeError, OverflowError) as exc:
            raise DialectError(f"the {dialect.name} dialect cannot encode {attack.variant}: {exc}") from None
    sign = attack.sign
    if sign is Sign.WRONG_SECRET:
        return wrong.encode_call(call, now)
    if sign in (Sign.STALE, Sign.FUTURE):
        return dialect.encode_call(call, now - STALE_S if sign is Sign.STALE else now + STALE_S)
    if sign is Sign.UNSIGNED:
        bare = without_signature(dialect.encode_call(call, now), wrong.encode_call(call, now))
        if bare is None:
            raise DialectError(f"the {dialect.name} dialect's signature cannot be left out of a request")
        return bare
    if sign is Sign.TAMPERED:
        assert call.amount is not None
        other = _replace_amount(call, call.amount.minor * 100)
        out = tampered(dialect.encode_call(call, now), dialect.encode_call(other, now), wrong.encode_call(other, now))
        if out is None:
            raise DialectError(f"the {dialect.name} dialect's signature does not cover the body (or cannot be moved "
                               "onto another one)")
        return out
    return dialect.encode_call(call, now)


def _replace_amount(call: WalletCall, minor: int) -> WalletCall:
    assert call.amount is not None
    return replace(call, amount=Money(minor, call.amount.currency))


def tampered(signed: HttpRequest, changed: HttpRequest, changed_wrong: HttpRequest) -> HttpRequest | None:
    """``changed`` (another body) carrying ``signed``'s signature: what differs between ``changed`` and
    ``changed_wrong`` (the same request under another secret) is the signature, taken from ``signed``."""
    headers = {k: (signed.headers.get(k, v) if changed_wrong.headers.get(k) != v else v)
               for k, v in changed.headers.items()}
    path: str | None = changed.path
    if path != changed_wrong.path:
        path = _swap_params(changed.path, changed_wrong.path, signed.path, query=True)
        if path is None:
            return None
    body = changed.body
    if body != changed_wrong.body:
        if "form" not in changed.headers.get("Content-Type", ""):
            return None
        swapped = _swap_params(body.decode(), changed_wrong.body.decode(), signed.body.decode(), query=False)
        if swapped is None:
            return None
        body = swapped.encode()
    out = HttpRequest(changed.method, path, headers, body)
    return None if out == changed else out


def _swap_params(mine: str, wrong: str, donor: str, *, query: bool) -> str | None:
    if query:
        base, _, q = mine.partition("?")
        wbase, _, wq = wrong.partition("?")
        dq = donor.partition("?")[2]
        if base != wbase:
            return None
    else:
        base, q, wq, dq = "", mine, wrong, donor
    theirs = dict(parse_qsl(wq, keep_blank_values=True))
    donor_values = dict(parse_qsl(dq, keep_blank_values=True))
    pairs = [(k, donor_values.get(k, v) if theirs.get(k) != v else v) for k, v in parse_qsl(q, keep_blank_values=True)]
    text = urlencode(pairs)
    return f"{base}?{text}" if query else text


RAW_BODIES: Final = ("nested-field", "nested-body", "invalid-utf8")
"""The attacks whose body croupier writes itself (canonical JSON, signed over the bytes sent)."""
NOT_UTF8: Final = b"\xff\xfe\xc0\xaf"
"""Bytes that are no UTF-8 (an overlong "/" among them), put in a tx_id's JSON string."""


def raw_body(secret: str, call: WalletCall, now: float, variant: str) -> HttpRequest:
    """A canonical request of ``call`` with a body croupier writes itself (:data:`RAW_BODIES`), signed over the
    bytes sent."""
    body = orjson.dumps(call_to_json(call))
    if variant == "nested-field":
        raw = body[:-1] + b',"x_nested":' + b"[" * NESTING + b"]" * NESTING + b"}"
    elif variant == "nested-body":
        raw = b"[" * NESTING + body + b"]" * NESTING
    else:
        tx = orjson.dumps(call.tx_id)
        raw = body.replace(tx, tx[:-1] + NOT_UTF8 + b'"', 1)
    headers = dict(JSON_HEADERS)
    headers[signing.HEADER] = signing.sign(secret, raw, int(now))
    return HttpRequest("POST", str(call.op), headers, raw)


# -- what came back, and the verdict ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Balances:
    """A player's balance read through the protocol (a ``balance`` call) and through the admin API (None: not
    read, or the read failed)."""

    protocol: int | None = None
    admin: int | None = None

    def known(self) -> bool:
        return self.protocol is not None or self.admin is not None

    def to_json(self) -> dict[str, int | None]:
        return {"protocol": self.protocol, "admin": self.admin}


def moved(before: Balances, after: Balances) -> int | None:
    """How much the balance moved between two reads (None: no read on both sides); the admin API's read first."""
    for b, a in ((before.admin, after.admin), (before.protocol, after.protocol)):
        if b is not None and a is not None:
            return a - b
    return None


def moves(before: Balances, after: Balances) -> list[int]:
    """Every movement the reads show (each source read on both sides)."""
    return [a - b for b, a in ((before.admin, after.admin), (before.protocol, after.protocol))
            if b is not None and a is not None]


@dataclass(frozen=True, slots=True)
class Sent:
    """One request of an attack and what came back."""

    outcome: Outcome
    status: int | None
    body: bytes


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything an attack's judgement needs: the answer, the balances around it, the effect the call would have
    had if accepted, and (replays) the first answer; (follow-ups) the call sent again as it should have been."""

    sent: Sent
    before: Balances
    after: Balances
    delta: int = 0
    first: Sent | None = None
    others: tuple[tuple[Balances, Balances], ...] = ()
    """Other players' balances around the attack (a session of another player: that player's)."""
    follow: Sent | None = None
    follow_after: Balances | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    rule: str = ""
    message: str = ""
    severity: Severity | None = None
    note: str = ""


def _fail(rule: str, message: str, money: bool = False) -> Verdict:
    return Verdict(Status.FAIL, rule, message, Severity.MONEY if money else Severity.CONTRACT)


def _amounts(moved: list[int]) -> str:
    """How the reads saw the balance move ("-100", or "-100 (admin API) / 0 (balance call)" when they differ)."""
    if len(set(moved)) == 1:
        return str(moved[0])
    return " / ".join(str(m) for m in moved) + " (the admin API / the balance call)"


def describe(sent: Sent) -> str:
    out = sent.outcome
    if isinstance(out, Ok):
        return f"accepted (HTTP {sent.status}, balance {out.balance.minor})"
    if isinstance(out, Rejected):
        return f"refused with {out.code} (HTTP {sent.status})"
    if out.status is not None and out.status < 500:
        return f"answered HTTP {out.status} that is no protocol answer ({out.reason})"
    return f"no definitive answer ({out.reason})"


def judge(attack: Attack, obs: Observation) -> Verdict:
    """The verdict on ``obs`` by PROTOCOL.md's text (see the module's docstring)."""
    out = obs.sent.outcome
    shift = moves(obs.before, obs.after)
    changed = [m for m in shift if m != 0]
    others_changed = [m for b, a in obs.others for m in moves(b, a) if m != 0]
    if isinstance(out, Unknown):
        valid = attack.expect in (Expect.REFUSE_OR_APPLY, Expect.REPLAY)
        money = bool(changed or others_changed)
        why = "a replay is HTTP 200" if attack.expect is Expect.REPLAY else \
            "the call must be accepted (200) or refused (HTTP 4xx with a protocol code)" if valid else \
            "it must be refused: HTTP 4xx with a protocol code"
        return _fail(_Q_VALID if valid else _Q_DEFINITIVE, f"{describe(obs.sent)}; {why}"
                     + (f"; the balance moved by {_amounts(changed or others_changed)}" if money else ""), money)
    if not obs.before.known() or not obs.after.known():
        if isinstance(out, Ok) and attack.expect is Expect.REFUSE:
            return _fail(attack.rule, f"{describe(obs.sent)}; it must be refused")
        return Verdict(Status.NOT_TESTED, message="not tested: the player's balance could not be read before and "
                       "after the attack, so \"nothing changed\" cannot be checked")
    if others_changed:
        return _fail(attack.rule, f"{describe(obs.sent)}; another player's balance moved by {_amounts(others_changed)}",
                     True)
    if attack.expect is Expect.REPLAY:
        return _judge_replay(attack, obs, changed)
    if isinstance(out, Rejected):
        if changed:
            return _fail(_Q_DEFINITIVE, f"{describe(obs.sent)}, yet the balance moved by {_amounts(changed)}", True)
        if attack.codes and out.code not in attack.codes and out.code is not ErrorCode.UNMAPPED:
            return _fail(attack.code_rule or attack.rule, f"{describe(obs.sent)}; the call breaks only the rule "
                         f"of {' or '.join(sorted(attack.codes))}")
        follow = _judge_follow(attack, obs)
        if follow is not None:
            return follow
        note = "the wallet's code has no canonical name (UNMAPPED): some refusal" if out.code is ErrorCode.UNMAPPED \
            else ""
        return Verdict(Status.PASS, message=f"{describe(obs.sent)}; nothing changed", note=note)
    # Accepted.
    assert isinstance(out, Ok)
    if attack.expect is Expect.REFUSE:
        money = bool(changed)
        return _fail(attack.rule, f"{describe(obs.sent)}; it must be refused"
                     + (f"; the balance moved by {_amounts(changed)}" if money else ""), money)
    if attack.expect is Expect.REFUSE_OR_REPLAY:
        first = obs.first.outcome if obs.first is not None else None
        if changed:
            return _fail("idempotency-1-no-change", f"{describe(obs.sent)}; the balance moved by {_amounts(changed)}",
                         True)
        if isinstance(first, Ok) and first.wallet_tx_id and out.wallet_tx_id not in (None, first.wallet_tx_id):
            return _fail("idempotency-1-original-id", f"{describe(obs.sent)} with wallet_tx_id {out.wallet_tx_id}, "
                         f"the original is {first.wallet_tx_id}")
        return Verdict(Status.PASS, message=f"{describe(obs.sent)} as a replay; nothing changed",
                       note="answered as a replay (\"A replay (rule 1) is always answered as one\"), not with "
                            "INVALID_SIGNATURE: a choice; nothing changed")
    return _judge_applied(attack, obs, out, shift)


def _judge_applied(attack: Attack, obs: Observation, out: Ok, shift: list[int]) -> Verdict:
    wrong = [m for m in shift if m != obs.delta]
    after = obs.after.admin if obs.after.admin is not None else obs.after.protocol
    if after is not None and after < 0:
        return _fail("idempotency-7-never-negative", f"{describe(obs.sent)}; the balance is now {after}", True)
    if wrong:
        return _fail(attack.rule if attack.rule != "idempotency-7-never-negative" else "operations-effect",
                     f"{describe(obs.sent)}; the balance moved by {wrong[0]}, the call's effect is {obs.delta}", True)
    if "balance" not in out.missing and after is not None and out.balance.minor != after:
        return _fail("operations-effect", f"{describe(obs.sent)}; the balance read after it is {after}")
    return Verdict(Status.PASS, message=f"{describe(obs.sent)}; the balance moved by exactly {obs.delta}",
                   note="accepted as an ordinary call")


def _judge_replay(attack: Attack, obs: Observation, changed: list[int]) -> Verdict:
    out, first = obs.sent.outcome, obs.first.outcome if obs.first else None
    if changed:
        return _fail("idempotency-1-no-change", f"{describe(obs.sent)}; the balance moved by {_amounts(changed)}", True)
    if not isinstance(out, Ok):
        return _fail("idempotency-1-no-change", f"{describe(obs.sent)}; a replay is HTTP 200")
    if isinstance(first, Ok) and first.wallet_tx_id and out.wallet_tx_id != first.wallet_tx_id:
        return _fail("idempotency-1-original-id", f"{describe(obs.sent)} with wallet_tx_id {out.wallet_tx_id}, the "
                     f"original is {first.wallet_tx_id}")
    return Verdict(Status.PASS, message=f"{describe(obs.sent)} as a replay; nothing changed")


def _judge_follow(attack: Attack, obs: Observation) -> Verdict | None:
    """The refused call sent again as it should have been: accepted with its effect (rule 3), or a failure."""
    if not attack.follow_up or obs.follow is None:
        return None
    out = obs.follow.outcome
    shift = moves(obs.after, obs.follow_after) if obs.follow_after is not None else []
    what = f"sent again signed and well-formed (same tx_id): {describe(obs.follow)}"
    if isinstance(out, Rejected) and out.code in CIRCUMSTANTIAL:
        return None  # a session that ran out, a balance spent: the circumstance, not the record, refused it
    if isinstance(out, Rejected):
        return _fail("idempotency-3-rejected-not-recorded", f"{describe(obs.sent)}; {what}")
    if isinstance(out, Unknown):
        return _fail(_Q_VALID, f"{describe(obs.sent)}; {what}")
    wrong = [m for m in shift if m != obs.delta]
    if wrong:
        return _fail("operations-effect", f"{describe(obs.sent)}; {what}, the balance moved by {wrong[0]}, the "
                     f"call's effect is {obs.delta}", True)
    return None


# -- the report ----------------------------------------------------------------------------------------------


@dataclass
class AttackResult:
    """One attack: what it is, what was sent, what came back, the verdict and the rule it quotes."""

    group: str
    name: str
    what: str
    status: Status
    rule: str = ""
    quote: str = ""
    """The rule's sentences of PROTOCOL.md as one text (:attr:`Rule.text`: " … " between them, markdown's marks
    dropped, as every finding of croupier quotes); empty unless it failed."""
    message: str = ""
    severity: str = ""
    note: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def quotes(self) -> list[str]:
        """The rule's sentences, verbatim (markdown included), as PROTOCOL.md writes them."""
        return list(RULES[self.rule].quotes) if self.rule else []

    def to_json(self) -> dict[str, Any]:
        rule = RULES[self.rule] if self.rule else None
        return {"group": self.group, "name": self.name, "what": self.what, "status": str(self.status),
                "rule": self.rule, "rule_title": rule.title if rule else "", "section": rule.section if rule else "",
                "source": rule.source if rule else "", "quote": self.quote, "quotes": self.quotes,
                "message": self.message, "severity": self.severity, "note": self.note, "evidence": self.evidence}


def result(attack: Attack, verdict: Verdict, evidence: Mapping[str, Any]) -> AttackResult:
    rule = verdict.rule if verdict.status is Status.FAIL else ""
    return AttackResult(str(attack.group), attack.name, attack.what, verdict.status, rule,
                        quote_of(rule) if rule else "", verdict.message,
                        str(verdict.severity) if verdict.severity else "", verdict.note, dict(evidence))


def quote_of(rule: str) -> str:
    """The rule's quotes as one text, as every finding of croupier quotes them (:attr:`Rule.text`)."""
    return RULES[rule].text


def not_tested(attack: Attack, why: str) -> AttackResult:
    why = why if why.startswith("not tested") else f"not tested: {why}"
    return AttackResult(str(attack.group), attack.name, attack.what, Status.NOT_TESTED, message=why)


@dataclass
class SecurityReport:
    """The security pass: every attack's result, in the order sent."""

    wallet: str
    dialect: str
    items: list[AttackResult] = field(default_factory=list)
    error: str = ""
    """Why the pass could not run at all (every item is then not tested)."""
    notes: list[str] = field(default_factory=list)
    """What a reader should know about how far the pass could go (a test account with little money...)."""
    players: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        out = {str(s): 0 for s in Status}
        for item in self.items:
            out[str(item.status)] += 1
        return out

    def by_group(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {str(g): {str(s): 0 for s in Status} for g in Group}
        for item in self.items:
            out[item.group][str(item.status)] += 1
        return out

    @property
    def failed(self) -> list[AttackResult]:
        return [i for i in self.items if i.status is Status.FAIL]

    @property
    def verdict(self) -> str:
        """``error`` (the pass could not start), ``fail`` (an attack failed) or ``pass`` (some may be not tested)."""
        return "error" if self.error else "fail" if self.failed else "pass"

    @property
    def passed(self) -> bool:
        """No attack failed (some may be not tested)."""
        return not self.failed and not self.error

    def render_text(self) -> str:
        """The pass as a reader scans it: the counts, each group's, then every failure (with the rule's words)
        and every attack not tested (with why)."""
        c = self.counts()
        head = (f"security pass against {self.wallet} ({self.dialect}): {len(self.items)} attacks, {c['pass']} "
                f"pass, {c['fail']} fail, {c['not tested']} not tested ({self.seconds:.1f} s)")
        lines = [head]
        lines += [f"  {text}" for text in (self.error, *self.notes) if text]
        for group, n in self.by_group().items():
            lines.append(f"  {group:<11} {n['pass']:>3} pass {n['fail']:>3} fail {n['not tested']:>3} not tested   "
                         f"{GROUP_TITLES[Group(group)]}")
        for item in self.items:
            if item.status is Status.FAIL:
                lines += [f"FAIL {item.group}/{item.name}: {item.what}", f"     {item.message}",
                          f"     {RULES[item.rule].section}: \"{item.quote}\""]
        lines += [f"not tested {i.group}/{i.name}: {i.message.removeprefix('not tested: ')}"
                  for i in self.items if i.status is Status.NOT_TESTED and not self.error]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "wallet": self.wallet, "dialect": self.dialect, "error": self.error,
                "notes": self.notes,
                "players": self.players,
                "seconds": round(self.seconds, 3), "counts": self.counts(), "by_group": self.by_group(),
                "items": [i.to_json() for i in self.items]}


# -- evidence --------------------------------------------------------------------------------------------------

SHOWN: Final = 600
"""How many characters of a body the evidence shows (the length is always given)."""


def shown(raw: bytes) -> str:
    """A body as a reader sees it: UTF-8 (bytes that are not shown escaped), cut after SHOWN characters."""
    text = raw.decode("utf-8", "backslashreplace")
    if len(text) <= SHOWN:
        return text
    rest = set(raw[-256:])
    tail = f", ending in {bytes(sorted(rest)).decode('utf-8', 'backslashreplace')!r} only" if len(rest) <= 2 else ""
    return f"{text[:SHOWN]}… ({len(raw)} bytes in all{tail})"


CURL_MAX: Final = 8 * 1024
"""The largest body the evidence writes as a curl command (larger ones are described, not spelled out)."""


def request_json(req: HttpRequest, base_url: str = "") -> dict[str, Any]:
    """The request as the evidence shows it; with ``base_url``, also the curl command that sends the same bytes
    (a signature binds its time: sent again after 300 s, a once valid request is stale)."""
    out: dict[str, Any] = {"method": req.method, "path": req.path, "headers": dict(req.headers),
                           "body": shown(req.body), "body_bytes": len(req.body)}
    if base_url and len(req.body) <= CURL_MAX:
        out["curl"] = curl(req, base_url)
    return out


def _shell_bytes(raw: bytes) -> str:
    """``raw`` as one shell word: quoted text when it is UTF-8, else bash's ``$'…'`` with ``\\xHH`` escapes."""
    try:
        return shlex.quote(raw.decode("utf-8"))
    except UnicodeDecodeError:
        out = "".join(chr(b) if 0x20 <= b < 0x7F and b not in b"'\\" else f"\\x{b:02x}" for b in raw)
        return f"$'{out}'"


def curl(req: HttpRequest, base_url: str) -> str:
    """A shell command that sends ``req``'s exact bytes to the wallet at ``base_url``."""
    headers = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in req.headers.items())
    data = f" --data-binary {_shell_bytes(req.body)}" if req.body else ""
    url = f"{base_url.rstrip('/')}/{req.path}"
    return f"curl -sS -X {req.method} {shlex.quote(url)} {headers}{data}".replace("  ", " ")


def sent_json(sent: Sent) -> dict[str, Any]:
    return {"status": sent.status, "body": shown(sent.body), "outcome": describe(sent)}

"""Unknown fields are ignored, in every dialect and every operation (PROTOCOL.md, Transport).

"A wallet ignores fields it does not know: providers add fields over time, and a `win` or
`rollback` refused for an extra field leaves a player's money stuck. A listed field that is
missing or of the wrong type is `BAD_REQUEST`."

Over real HTTP against the reference wallet, for the canonical dialect and the four built-in
ones: a valid call carrying extra fields (a scalar, a nested object, a list, a null, several at
once; inside nested objects and inside the actions of a list; extra query and form parameters;
re-signed over the bytes or parameters as sent) is applied exactly as the same call without them
(a twin player gets the plain call: same answer balance, same balance and number of rows in the
admin API). Extra fields are not among rule 1's compared fields: the call sent again with other
extras, or with none, is a replay. The wallet neither echoes nor stores them. A listed field that
is missing or of the wrong type is still refused with the dialect's BAD_REQUEST and changes
nothing; extras added after signing break the signature. A Hypothesis property sends random extra
names and values to the canonical wallet.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.protocol import dialects, signing
from simulator.protocol.calls import Ok, Op, Outcome, Rejected, WalletCall, WinReason
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects import HttpRequest, HttpResponse
from simulator.protocol.dialects.builtin import SPECS
from simulator.protocol.dialects.canonical import FIELDS
from simulator.protocol.dialects.declarative import DeclarativeDialect
from simulator.protocol.dialects.keys import keys_for
from simulator.protocol.money import Money, currency
from tests.support import SECRET, Served, make_store, serve_wallet
from tests.test_bad_input import Env, Req, enc

ALL = ["canonical", *SPECS]
EUR = currency("EUR")
START = 10_000
MARK = "zz-unknown-mark"
"""A value only the extra fields carry: it must appear in no answer and no stored row."""

EXTRAS: dict[str, Any] = {
    "unk_scalar": 7,
    "unk_object": {"a": {"b": [1, None, MARK]}, "flag": True},
    "unk_list": [MARK, 2, {"c": None}, []],
    "unk_null": None,
    "unk_text": MARK,
}
"""Several unknown fields at once, of every JSON kind."""
OTHER_EXTRAS: dict[str, Any] = {"unk_scalar": "changed", "unk_new": {"deep": [MARK]}, "unk_null": 0}
"""Other extras for the same call: still the same call (a replay)."""
NESTED: dict[str, Any] = {"unk_nested": MARK, "unk_nested_obj": {"k": [None, MARK]}}
"""Added to every object below the top (``meta`` of json-rsa, ``transaction`` and ``game`` of
token-query, each action of actions-hmac)."""

EXPECTED = {Op.AUTHENTICATE: START, Op.BALANCE: START, Op.BET: START - 150, Op.WIN: START - 100 + 250,
            Op.ROLLBACK: START}
"""The balance after each case's call (its setup included), with or without extras."""


def dialect(name: str) -> dialects.Dialect:
    return dialects.get(name, SECRET)


# -- requests with extra fields, signed over what is sent ------------------------------------


def _dump(value: Any) -> bytes:
    """JSON where a Decimal is written as the number it is (token-query's amounts)."""
    if isinstance(value, Decimal):
        return str(value).encode()
    if isinstance(value, dict):
        return b"{" + b",".join(json.dumps(str(k)).encode() + b":" + _dump(v) for k, v in value.items()) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(_dump(v) for v in value) + b"]"
    return json.dumps(value).encode()


def _nest(doc: Any, nested: dict[str, Any]) -> None:
    """Add ``nested`` to every object below the top of ``doc`` (lists keep their length)."""
    children = list(doc.values()) if isinstance(doc, dict) else doc if isinstance(doc, list) else []
    for child in children:
        _nest(child, nested)
        if isinstance(child, dict):
            child.update(copy.deepcopy(nested))


def _form_pairs(name: str, value: Any) -> list[tuple[str, str]]:
    """An unknown field as form parameters: objects and lists in bracket notation (a list is one
    parameter several times), null as an empty value."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _form_pairs(f"{name}[{k}]", v)]
    if isinstance(value, list):
        return [p for v in value for p in _form_pairs(f"{name}[]", v)]
    if value is None:
        return [(name, "")]
    if isinstance(value, bool):
        return [(name, "true" if value else "false")]
    return [(name, str(value))]


def md5_hash(pairs: list[tuple[str, str]]) -> str:
    """form-md5's ``hash``, written out: MD5 of every other parameter, sorted, as ``k=v&…``, + secret."""
    text = "&".join(f"{k}={v}" for k, v in sorted(p for p in pairs if p[0] != "hash"))
    return hashlib.md5((text + SECRET).encode()).hexdigest()


def resign(name: str, req: HttpRequest) -> HttpRequest:
    """``req`` signed again over its body as it is now, the way a provider signs it."""
    headers = dict(req.headers)
    body = req.body
    if name == "canonical":
        headers[signing.HEADER] = signing.sign(SECRET, body, int(time.time()))
    elif name == "json-rsa":
        headers["X-Hub88-Signature"] = keys_for(SECRET).provider.sign(body)
    elif name == "actions-hmac":
        headers["X-REQUEST-SIGN"] = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    elif name == "form-md5":
        pairs = [p for p in parse_qsl(body.decode(), keep_blank_values=True) if p[0] != "hash"]
        body = urlencode([*pairs, ("hash", md5_hash(pairs))]).encode()
    # token-query: the static authToken in the query says who sends, not what.
    return HttpRequest(req.method, req.path, headers, body)


def with_extras(name: str, req: HttpRequest, extras: dict[str, Any] = EXTRAS, nested: dict[str, Any] = NESTED,
                sign: bool = True) -> HttpRequest:
    """``req`` with unknown fields added at the top, inside every nested object, and (token-query)
    as query parameters; signed again unless ``sign`` is False."""
    path = req.path
    if name == "form-md5":
        pairs = parse_qsl(req.body.decode(), keep_blank_values=True)
        added = [p for k, v in extras.items() for p in _form_pairs(k, v)] + [("unk_twice", "1"), ("unk_twice", "2")]
        body = urlencode([*pairs[:1], *added, *pairs[1:]]).encode()  # anywhere among the listed ones
    else:
        doc = json.loads(req.body, parse_float=Decimal)
        _nest(doc, nested)
        doc.update(extras)
        body = _dump(doc)
        if name == "token-query":
            path = f"{path}&x_query={MARK}&x_empty=&authToken_x=1"
    out = HttpRequest(req.method, path, dict(req.headers), body)
    return resign(name, out) if sign else out


def wire_key(name: str, call: WalletCall, source: str) -> str:
    """The wire name (dotted path) of the field that carries ``source`` for ``call``."""
    d = dialect(name)
    if not isinstance(d, DeclarativeDialect):
        return source
    return next(k for k, src in d.operation_for(call).fields if src == source)


def edit_field(name: str, req: HttpRequest, key: str, value: Any = None, drop: bool = False) -> HttpRequest:
    """``req`` (extras and all) with one listed field removed or replaced; signed again."""
    if name == "form-md5":
        pairs = parse_qsl(req.body.decode(), keep_blank_values=True)
        if drop:
            pairs = [p for p in pairs if p[0] != key]
        else:
            pairs = [(k, str(value) if k == key else v) for k, v in pairs]
        return resign(name, HttpRequest(req.method, req.path, req.headers, urlencode(pairs).encode()))
    doc = json.loads(req.body, parse_float=Decimal)
    *parents, last = [int(p) if p.isdigit() else p for p in key.split(".")]
    node = doc
    for part in parents:
        node = node[part]
    if drop:
        del node[last]
    else:
        node[last] = value
    return resign(name, HttpRequest(req.method, req.path, req.headers, _dump(doc)))


# -- the wallet ---------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Served]:
    async with serve_wallet(make_store(request.param, tmp_path)) as s:
        yield s


async def post(s: Served, name: str, req: HttpRequest) -> HttpResponse:
    prefix = "" if name == "canonical" else f"{name}/"
    async with s.session.request(req.method, f"{s.base}/wallet/{prefix}{req.path}", data=req.body,
                                 headers=req.headers) as resp:
        return HttpResponse(resp.status, dict(resp.headers), await resp.read())


async def state(s: Served, pid: str) -> tuple[int, int]:
    """The player's balance and number of transaction rows, from the admin API."""
    return (await s.admin.player(pid))["balance"], len(await s.admin.transactions(pid))


async def session_of(s: Served, pid: str) -> str:
    await s.admin.create_player(pid, "EUR", START)
    authed = await s.wallet.send(WalletCall.authenticate(await s.admin.token(pid), "g1"))
    assert isinstance(authed, Ok) and authed.session_token, authed
    return authed.session_token


async def case(s: Served, op: Op, pid: str) -> WalletCall:
    """A fresh player and the call of ``op`` to send for it (a win's or rollback's bet placed first,
    in the canonical dialect: every dialect shares the one store)."""
    sess = await session_of(s, pid)
    if op is Op.AUTHENTICATE:
        return WalletCall.authenticate(await s.admin.token(pid), "g1")
    if op is Op.BALANCE:
        return WalletCall.balance(pid, sess)
    if op is Op.BET:
        return WalletCall.bet(f"{pid}/bet", pid, sess, "g1", "r1", Money(150, EUR))
    bet = await s.wallet.send(WalletCall.bet(f"{pid}/b0", pid, sess, "g1", "r1", Money(100, EUR)))
    assert isinstance(bet, Ok), bet
    if op is Op.WIN:
        return WalletCall.win(f"{pid}/win", pid, sess, "g1", "r1", Money(250, EUR), WinReason.REGULAR, True)
    return WalletCall.rollback(f"{pid}/rb", f"{pid}/b0", pid, sess, "g1", "r1")


async def send(s: Served, name: str, call: WalletCall, req: HttpRequest) -> tuple[Outcome, HttpResponse]:
    resp = await post(s, name, req)
    return dialect(name).decode_response(call, resp), resp


def assert_not_echoed(resp: HttpResponse) -> None:
    assert MARK.encode() not in resp.body and b"unk_" not in resp.body, resp.body


# -- every dialect, every operation -------------------------------------------------------------


@pytest.mark.parametrize("op", list(Op), ids=str)
@pytest.mark.parametrize("name", ALL)
async def test_a_call_with_extra_fields_is_applied_as_without_them(served: Served, name: str, op: Op) -> None:
    d = dialect(name)
    plain_pid, extra_pid = f"{name}-{op}-plain", f"{name}-{op}-extra"
    plain_call = await case(served, op, plain_pid)
    extra_call = await case(served, op, extra_pid)
    plain, _ = await send(served, name, plain_call, d.encode_call(plain_call, time.time()))
    extra_req = with_extras(name, d.encode_call(extra_call, time.time()))
    extra, resp = await send(served, name, extra_call, extra_req)
    assert isinstance(plain, Ok), plain
    assert isinstance(extra, Ok), (extra, extra_req.body)
    assert extra.balance == plain.balance == Money(EXPECTED[op], EUR)
    assert await state(served, extra_pid) == await state(served, plain_pid)
    assert (await served.admin.player(extra_pid))["balance"] == EXPECTED[op]
    assert_not_echoed(resp)
    rows = json.dumps(await served.admin.transactions(extra_pid))
    assert MARK not in rows and "unk_" not in rows, rows
    if op is Op.AUTHENTICATE:
        assert extra.player_id == extra_pid and extra.session_token
        # The launch token exchanged again, without extras: the same session (a retry is safe).
        again, _ = await send(served, name, extra_call, d.encode_call(extra_call, time.time()))
        assert isinstance(again, Ok) and again.session_token == extra.session_token


@pytest.mark.parametrize("op", [Op.BET, Op.WIN, Op.ROLLBACK], ids=str)
@pytest.mark.parametrize("name", ALL)
async def test_extra_fields_take_no_part_in_replays(served: Served, name: str, op: Op) -> None:
    """Rule 1 compares operation, player_id, round_id, amount, currency and ref_tx_id: a call sent
    again with other extras, or none, is a replay (and the plain call resent with extras too)."""
    d = dialect(name)
    for first_with_extras in (True, False):
        pid = f"{name}-{op}-replay-{first_with_extras}"
        call = await case(served, op, pid)
        plain_req = d.encode_call(call, time.time())
        first, _ = await send(served, name, call, with_extras(name, plain_req) if first_with_extras else plain_req)
        assert isinstance(first, Ok), first
        after = await state(served, pid)
        assert after[0] == EXPECTED[op]
        for again_req in (plain_req, with_extras(name, d.encode_call(call, time.time())),
                          with_extras(name, d.encode_call(call, time.time()), OTHER_EXTRAS, {"unk_other": [MARK]})):
            again, resp = await send(served, name, call, again_req)
            assert again == first, (again, first)  # the original wallet_tx_id, the current balance
            assert_not_echoed(resp)
            assert await state(served, pid) == after
        rows = json.dumps(await served.admin.transactions(pid))
        assert MARK not in rows and "unk_" not in rows, rows


@pytest.mark.parametrize("op", list(Op), ids=str)
@pytest.mark.parametrize("name", ALL)
async def test_a_missing_or_wrongly_typed_listed_field_is_still_refused(served: Served, name: str, op: Op) -> None:
    """Extras present or not, a listed field missing or of the wrong type is the dialect's BAD_REQUEST,
    and nothing changes."""
    d = dialect(name)
    pid = f"{name}-{op}-bad"
    call = await case(served, op, pid)
    before = await state(served, pid)
    req = with_extras(name, d.encode_call(call, time.time()))
    ident = wire_key(name, call, "token" if op is Op.AUTHENTICATE else "player_id")
    form = name == "form-md5"
    broken = [edit_field(name, req, ident, drop=True),
              edit_field(name, req, ident, "" if form else {"id": pid})]
    if op in (Op.BET, Op.WIN):
        amount = wire_key(name, call, "amount")
        broken += [edit_field(name, req, amount, drop=True),
                   edit_field(name, req, amount, "ten" if form else [150]),
                   # (a form carries only text: an empty currency is an unknown one, CURRENCY_MISMATCH)
                   edit_field(name, req, wire_key(name, call, "currency"), drop=form, value=978)]
    if op is Op.ROLLBACK:
        broken.append(edit_field(name, req, wire_key(name, call, "ref_tx_id"), "" if form else 5))
    for bad in broken:
        got, _ = await send(served, name, call, bad)
        assert isinstance(got, Rejected) and got.code is ErrorCode.BAD_REQUEST, (got, bad.body)
        assert await state(served, pid) == before
    # The same request, complete: accepted (so each refusal above was for the one field).
    ok, _ = await send(served, name, call, req)
    assert isinstance(ok, Ok), ok


@pytest.mark.parametrize("name", [n for n in ALL if n != "token-query"])
async def test_the_signature_covers_the_extra_fields_as_sent(served: Served, name: str) -> None:
    """Extras added after signing are a changed body (or parameter set): INVALID_SIGNATURE, nothing
    changes. (token-query's static token does not sign the body.)"""
    d = dialect(name)
    pid = f"{name}-sig"
    call = await case(served, Op.BET, pid)
    before = await state(served, pid)
    unsigned = with_extras(name, d.encode_call(call, time.time()), sign=False)
    got, _ = await send(served, name, call, unsigned)
    assert isinstance(got, Rejected) and got.code is ErrorCode.INVALID_SIGNATURE, got
    assert await state(served, pid) == before
    if name == "form-md5":
        # The hash is over every parameter sent, unknown ones (and both copies of one sent twice) included.
        pairs = parse_qsl(with_extras(name, d.encode_call(call, time.time())).body.decode(), keep_blank_values=True)
        listed_only = [p for p in pairs if not p[0].startswith("unk_") and p[0] != "hash"]
        wrong = urlencode([*pairs[:-1], ("hash", md5_hash(listed_only))]).encode()
        got, _ = await send(served, name, call, HttpRequest("POST", "bet.html", unsigned.headers, wrong))
        assert isinstance(got, Rejected) and got.code is ErrorCode.INVALID_SIGNATURE, got
        one_copy = [p for p in pairs if p != ("unk_twice", "2") and p[0] != "hash"]
        wrong = urlencode([*one_copy, ("hash", md5_hash(one_copy)), ("unk_twice", "2")]).encode()
        got, _ = await send(served, name, call, HttpRequest("POST", "bet.html", unsigned.headers, wrong))
        assert isinstance(got, Rejected) and got.code is ErrorCode.INVALID_SIGNATURE, got
        # A listed parameter given twice is no unknown field: it is ambiguous, and refused.
        twice = [*pairs[:-1], ("amount", "9.99")]
        got, _ = await send(served, name, call, resign(name, HttpRequest("POST", "bet.html", unsigned.headers,
                                                                          urlencode(twice).encode())))
        assert isinstance(got, Rejected) and got.code is ErrorCode.BAD_REQUEST, got
        assert await state(served, pid) == before
    ok, _ = await send(served, name, call, with_extras(name, d.encode_call(call, time.time())))
    assert isinstance(ok, Ok) and ok.balance == Money(START - 150, EUR), ok


# -- actions-hmac: a batch, and a list longer than the operation names ---------------------------


async def test_extra_fields_in_a_batch_and_its_actions_are_ignored(served: Served) -> None:
    name = "actions-hmac"
    b = dialects.batching(dialect(name))
    assert b is not None
    outcomes: dict[str, list[Outcome]] = {}
    for pid in ("batch-plain", "batch-extra"):
        sess = await session_of(served, pid)
        calls = [WalletCall.bet(f"{pid}/1", pid, sess, "g1", "r1", Money(100, EUR)),
                 WalletCall.win(f"{pid}/2", pid, sess, "g1", "r1", Money(250, EUR), WinReason.REGULAR, True)]
        req = b.encode_batch(calls, time.time())
        if pid == "batch-extra":
            req = with_extras(name, req)
            assert json.loads(req.body)["actions"][1]["unk_nested"] == MARK  # inside each action too
        resp = await post(served, name, req)
        assert resp.status == 200, resp.body
        assert_not_echoed(resp)
        outcomes[pid] = b.decode_batch_response(calls, resp)
        assert [o.balance for o in outcomes[pid] if isinstance(o, Ok)] == [Money(START - 100, EUR),
                                                                           Money(START + 150, EUR)]
        # Sent again with other extras, or none: every action is a replay.
        for again in (b.encode_batch(calls, time.time()),
                      with_extras(name, b.encode_batch(calls, time.time()), OTHER_EXTRAS, {"unk_other": None})):
            resp = await post(served, name, again)
            assert b.decode_batch_response(calls, resp) == outcomes[pid]
    assert await state(served, "batch-plain") == await state(served, "batch-extra") == (START + 150, 3)  # the opening deposit, the bet, the win


async def test_a_second_rollback_action_is_not_an_unknown_field(served: Served) -> None:
    """More entries in a list the dialect indexes (``actions.0.…``) are more actions, not extras:
    reading only the first would silently drop the others, so the request is refused."""
    name = "actions-hmac"
    d = dialect(name)
    pid = "two-rollbacks"
    call = await case(served, Op.ROLLBACK, pid)
    before = await state(served, pid)
    doc = json.loads(d.encode_call(call, time.time()).body)
    doc["actions"].append({**doc["actions"][0], "action_id": f"{pid}/rb2"})
    got, _ = await send(served, name, call, resign(name, HttpRequest("POST", "rollback", {}, _dump(doc))))
    assert isinstance(got, Rejected) and got.code is ErrorCode.BAD_REQUEST, got
    assert await state(served, pid) == before
    # A constant is compared with its type: ``finished: 0`` is not ``false``.
    bet = WalletCall.bet(f"{pid}/b1", pid, call.session_token or "", "g1", "r2", Money(5, EUR))
    doc = json.loads(d.encode_call(bet, time.time()).body)
    doc["finished"] = 0
    got, _ = await send(served, name, bet, resign(name, HttpRequest("POST", "play", {}, _dump(doc))))
    assert isinstance(got, Rejected) and got.code is ErrorCode.BAD_REQUEST, got
    assert await state(served, pid) == before


# -- Hypothesis: random extra names and values, canonical dialect -------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=10)  # no lone surrogates: not JSON text
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=10,
)
_LOOKALIKES = ["Amount", "TX_ID", "amount ", " tx_id", "player", "session", "ref", "balance", "status", "code",
               "wallet_tx_id", "signature", "t", "v1", "round_closed_", "reason\u00e9", ""]


ANSWER_FIELDS = {
    Op.AUTHENTICATE: {"status", "player_id", "currency", "balance", "session_token"},
    Op.BALANCE: {"status", "balance", "currency"},
    **{op: {"status", "balance", "currency", "wallet_tx_id"} for op in (Op.BET, Op.WIN, Op.ROLLBACK)},
}


DROP = object()
WRONG_ID: list[Any] = [5, None, True, ["x"], {"id": "x"}]
WRONG_TYPE: dict[str, list[Any]] = {
    "amount": ["1", 1.5, None, True, [1]],
    "currency": [978, None, ["EUR"]],
    "reason": [1, None, ["regular"]],
    "round_closed": ["true", 0, None],
}


def _names(op: Op) -> st.SearchStrategy[str]:
    """Names that are not fields of ``op`` (another operation's field is an unknown one here)."""
    others = sorted({f for fields in FIELDS.values() for f in fields} - set(FIELDS[op]))
    return (_text | st.sampled_from(_LOOKALIKES) | st.sampled_from(others)).filter(lambda k: k not in FIELDS[op])


@pytest.fixture(params=["memory", "sqlite"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    e = Env(request.param, tmp_path)
    yield e
    e.close()


def test_random_extra_fields_change_nothing_about_a_call(env: Env) -> None:
    """Any extra names and values: the call is applied as without them, sent again with other extras or
    none it is a replay, and with a listed field dropped it is still BAD_REQUEST and changes nothing."""
    counter = itertools.count()

    def post_json(op: Op, body: dict[str, Any]) -> tuple[int, Any]:
        ans = env.run(env.send(Req("POST", f"/wallet/{op}", enc(body))))
        return ans.status, ans.json

    def balance() -> int:
        return int(env.run(env.served.admin.player("alice"))["balance"])

    @given(op=st.sampled_from(list(Op)), data=st.data())
    def check(op: Op, data: st.DataObject) -> None:
        extras = data.draw(st.dictionaries(_names(op), _values, min_size=1, max_size=5), label="extras")
        tx = f"hyp-{next(counter)}"
        if op is Op.AUTHENTICATE:
            body = {"token": env.launch_token, "game_id": "g1"}
        elif op is Op.ROLLBACK:
            status, _ = post_json(Op.BET, env.base(Op.BET, tx_id=f"{tx}-bet", amount=1))
            assert status == 200
            body = env.base(op, tx_id=tx, ref_tx_id=f"{tx}-bet")
        else:
            body = env.base(op, tx_id=tx, amount=1) if op in (Op.BET, Op.WIN) else env.base(op)
        before = balance()
        # A listed field missing or of the wrong type, extras or not: BAD_REQUEST, nothing changes.
        listed = data.draw(st.sampled_from(FIELDS[op]), label="broken field")
        wrong = data.draw(st.sampled_from([DROP, *WRONG_TYPE.get(listed, WRONG_ID)]), label="wrong value")
        broken = {k: v for k, v in {**body, **extras}.items() if k != listed}
        if wrong is not DROP:
            broken[listed] = wrong
        snapshot = env.run(env.snapshot())
        status, answer = post_json(op, broken)
        assert (status, answer["code"]) == (400, "BAD_REQUEST"), answer
        assert env.run(env.snapshot()) == snapshot
        # The complete call with extras: applied as the plain call would be.
        status, answer = post_json(op, {**body, **extras})
        assert status == 200 and answer["status"] == "ok", (answer, extras)
        delta = {Op.BET: -1, Op.WIN: 1, Op.ROLLBACK: 1}.get(op, 0)
        assert answer["balance"] == balance() == before + delta
        assert set(answer) == ANSWER_FIELDS[op], answer  # nothing of the extras echoed
        if op is Op.AUTHENTICATE:
            assert answer["session_token"] == env.session
        if op in (Op.BET, Op.WIN, Op.ROLLBACK):
            other = data.draw(st.dictionaries(_names(op), _values, max_size=3), label="other extras")
            for again in (body, {**body, **other}):
                status, replay = post_json(op, again)
                assert status == 200 and replay["wallet_tx_id"] == answer["wallet_tx_id"], replay
                assert replay["balance"] == balance() == before + delta

    check()

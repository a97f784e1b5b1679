"""The canonical dialect, both sides in memory (as h11 pairs a client and a server).

What the simulator encodes, the wallet decodes to the same call; what the wallet
encodes, the simulator decodes to the same outcome.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.protocol.calls import Ok, Op, Rejected, Unknown, WalletCall, WinReason
from simulator.protocol.codes import PROTOCOL_CODES, ErrorCode, http_status
from simulator.protocol.dialects import HttpRequest, HttpResponse
from simulator.protocol.dialects.canonical import MAX_ID_LENGTH, CanonicalDialect
from simulator.protocol.money import CURRENCIES, INT64_MAX, Money, currency
from simulator.protocol.signing import sign

NOW = 1_800_000_000.0
D = CanonicalDialect("k")

ids = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40
)
money = st.builds(
    lambda units, code: Money(units, currency(code)),
    st.integers(min_value=0, max_value=INT64_MAX),
    st.sampled_from(sorted(CURRENCIES)),
)
calls = st.one_of(
    st.builds(WalletCall.authenticate, ids, ids),
    st.builds(WalletCall.balance, ids, ids),
    st.builds(WalletCall.bet, ids, ids, ids, ids, ids, money),
    st.builds(WalletCall.win, ids, ids, ids, ids, ids, money, st.sampled_from(list(WinReason)), st.booleans()),
    st.builds(WalletCall.rollback, ids, ids, ids, ids, ids, ids),
)


@given(calls)
def test_call_round_trip(call: WalletCall) -> None:
    req = D.encode_call(call, NOW)
    assert req.method == "POST" and req.path == str(call.op)
    assert D.decode_request(req, NOW) == call


@given(calls, money, ids)
def test_ok_round_trip(call: WalletCall, balance: Money, wtx: str) -> None:
    if call.op is Op.AUTHENTICATE:
        ok = Ok(balance, player_id="p", session_token="s")
    elif call.op is Op.BALANCE:
        ok = Ok(balance)
    else:
        ok = Ok(balance, wallet_tx_id=wtx)
    resp = D.encode_response(call, ok)
    assert resp.status == 200
    assert D.decode_response(call, resp) == ok


@pytest.mark.parametrize("code", sorted(PROTOCOL_CODES - {ErrorCode.INTERNAL}))
def test_rejections_round_trip(code: ErrorCode) -> None:
    call = WalletCall.balance("p", "s")
    resp = D.encode_response(call, Rejected(code, "why"))
    assert resp.status == http_status(code)
    assert D.decode_response(call, resp) == Rejected(code, "why")


@pytest.mark.parametrize(
    "resp",
    [HttpResponse(500, body=b'{"status":"error","code":"INTERNAL"}'), HttpResponse(503, body=b"<html>"),
     HttpResponse(200, body=b"not json"), HttpResponse(200, body=b'{"status":"ok","balance":1.5,"currency":"EUR"}'),
     HttpResponse(200, body=b'{"status":"ok","balance":1,"currency":"EUR"}'),  # bet success without wallet_tx_id
     HttpResponse(409, body=b'{"status":"error","code":"INSUFFICIENT_FUNDS"}'),  # code with the wrong status
     HttpResponse(400, body=b'{"status":"error","code":"MADE_UP"}')],
)
def test_unreadable_answers_are_unknown(resp: HttpResponse) -> None:
    call = WalletCall.bet("t", "p", "s", "g", "r", Money.of(1, "EUR"))
    assert isinstance(D.decode_response(call, resp), Unknown)


def _signed(op: str, body: dict[str, object] | bytes) -> HttpRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"Content-Type": "application/json", "X-Signature": sign("k", raw, int(NOW))}
    return HttpRequest("POST", op, headers, raw)


BET = {"tx_id": "t", "player_id": "p", "session_token": "s", "game_id": "g", "round_id": "r",
       "currency": "EUR", "amount": 100}


@pytest.mark.parametrize(
    ("change", "code"),
    [({"amount": 10.0}, ErrorCode.BAD_REQUEST), ({"amount": "100"}, ErrorCode.BAD_REQUEST),
     ({"amount": True}, ErrorCode.BAD_REQUEST), ({"amount": -1}, ErrorCode.BAD_REQUEST),
     ({"amount": INT64_MAX + 1}, ErrorCode.BAD_REQUEST),
     ({"tx_id": ""}, ErrorCode.BAD_REQUEST), ({"tx_id": 5}, ErrorCode.BAD_REQUEST),
     ({"tx_id": "a\x00b"}, ErrorCode.BAD_REQUEST), ({"tx_id": "x" * (MAX_ID_LENGTH + 1)}, ErrorCode.BAD_REQUEST),
     ({"currency": "XXX"}, ErrorCode.CURRENCY_MISMATCH), ({"currency": 978}, ErrorCode.BAD_REQUEST)],
)
def test_bad_fields_are_refused_with_their_code(change: dict[str, object], code: ErrorCode) -> None:
    out = D.decode_request(_signed("bet", BET | change), NOW)
    assert isinstance(out, Rejected) and out.code is code, out


def test_unknown_fields_are_ignored() -> None:
    """PROTOCOL.md, Transport: a wallet ignores fields it does not know, at any depth and of any type."""
    plain = D.decode_request(_signed("bet", BET), NOW)
    assert isinstance(plain, WalletCall)
    for extra in ({"extra": 1}, {"comment": None}, {"": "x"}, {"meta": {"a": [1, {"b": None}]}},
                  {"list": [1, "two", None]}, {"AMOUNT": "not read", "tx_id_2": 5}):
        assert D.decode_request(_signed("bet", BET | extra), NOW) == plain, extra


def test_missing_field_and_bad_bytes() -> None:
    body = dict(BET)
    del body["amount"]
    for req in (_signed("bet", body), _signed("bet", b"\xff\xfe"), _signed("bet", b"[1]"),
                _signed("bet", b'{"tx_id":"\\ud800"}')):
        out = D.decode_request(req, NOW)
        assert isinstance(out, Rejected) and out.code is ErrorCode.BAD_REQUEST, out


def test_unsigned_and_stale_requests_are_refused() -> None:
    req = _signed("bet", BET)
    assert D.decode_request(req, NOW + 301) == Rejected(
        ErrorCode.INVALID_SIGNATURE, "signature timestamp is more than 300s from the wallet's clock"
    )
    unsigned = HttpRequest("POST", "bet", {}, req.body)
    out = D.decode_request(unsigned, NOW)
    assert isinstance(out, Rejected) and out.code is ErrorCode.INVALID_SIGNATURE

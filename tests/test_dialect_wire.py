"""The declarative engine's richer wires (issue 14): semantics, codes, amounts, GET, signatures, variants.

Each feature is tried on a small description written here (``load_spec``), both ways: what the
provider sends and reads, what the wallet side reads and answers.  Signatures are checked against
vectors computed here by hand (hashlib/hmac written out), and the shipped shape files
(``dialects/session-wallet.toml``, ``dialects/query-wallet.toml``) are validated and round-tripped.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import yarl
from hypothesis import given
from hypothesis import strategies as st

from simulator.commands.cli import main
from simulator.protocol import dialects
from simulator.protocol.calls import Ok, Op, Rejected, Unknown, WalletCall, WinReason
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects import DialectError, HttpRequest, HttpResponse
from simulator.protocol.dialects.declarative import VARIANTS, DeclarativeDialect, SpecError, load_file, load_spec
from simulator.protocol.dialects.signatures import SCHEMES
from simulator.protocol.money import INT64_MAX, Money, currency

ROOT = Path(__file__).resolve().parent.parent
SECRET = "wire-secret"
NOW = 1_700_000_000.0
EUR = currency("EUR")

_FIELDS = {"player": "player_id", "session": "session_token", "game": "game_id", "round": "round_id"}


def base() -> dict[str, Any]:
    """A small JSON dialect carrying every canonical field (tests change what they try)."""
    return {
        "name": "wire-test",
        "request": {"format": "json"},
        "amount": {"encoding": "minor"},
        "signature": {"scheme": "hmac-sha256", "header": "X-Sig"},
        "operations": [
            {"op": "authenticate", "path": "auth", "fields": {"token": "token", "game": "game_id"}},
            {"op": "balance", "path": "balance", "fields": {"player": "player_id", "session": "session_token"}},
            {"op": "bet", "path": "bet",
             "fields": {**_FIELDS, "tx": "tx_id", "currency": "currency", "amount": "amount"}},
            {"op": "win", "path": "win",
             "fields": {**_FIELDS, "tx": "tx_id", "currency": "currency", "amount": "amount", "reason": "reason",
                        "closed": "round_closed"}},
            {"op": "rollback", "path": "rollback", "fields": {**_FIELDS, "tx": "tx_id", "ref": "ref_tx_id"}},
        ],
        "response": {
            "success": "status-field", "ok": "OK",
            "ok_fields": {"status": "status", "balance": "balance", "currency": "currency", "player": "player_id",
                          "session": "session_token", "txid": "wallet_tx_id"},
            "error_fields": {"status": "status", "message": "message"},
            "codes": {"BAD_REQUEST": "BAD", "INSUFFICIENT_FUNDS": "FUNDS", "INVALID_SIGNATURE": "SIG"},
            "unknown_codes": ["LATER"],
        },
    }


def dialect(data: dict[str, Any], secret: str = SECRET) -> DeclarativeDialect:
    return DeclarativeDialect(load_spec(data), secret)


def problems(data: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as err:
        load_spec(data)
    return "\n".join(err.value.problems)


def answer(d: DeclarativeDialect, call: WalletCall, body: dict[str, Any], status: int = 200) -> Any:
    return d.decode_response(call, HttpResponse(status, {"Content-Type": "application/json"},
                                                json.dumps(body).encode()))


BET = WalletCall.bet("t1", "p1", "s1", "g1", "r1", Money(150, EUR))
WIN = WalletCall.win("t2", "p1", "s1", "g1", "r1", Money(300, EUR), WinReason.REGULAR, True)
ROLLBACK = WalletCall.rollback("t3", "t1", "p1", "s1", "g1", "r1")


# -- codes: several fields, partial maps ----------------------------------------------------------


def two_fields() -> DeclarativeDialect:
    data = base()
    data["response"]["code_fields"] = ["error.code", "status"]
    data["response"]["error_fields"] = {"status": "status", "error.message": "message"}
    data["response"]["codes"] = {"INSUFFICIENT_FUNDS": "INSUFFICIENT_FUNDS", "ROUND_NOT_FOUND": "BET_NOT_FOUND",
                                 "BAD_REQUEST": "INVALID_REQUEST"}
    return dialect(data)


def test_codes_are_read_from_the_first_field_present() -> None:
    d = two_fields()
    got = answer(d, WIN, {"status": "ERROR", "error": {"code": "BET_NOT_FOUND", "message": "which bet?"}})
    assert got == Rejected(ErrorCode.ROUND_NOT_FOUND, "which bet?")
    assert answer(d, BET, {"status": "INSUFFICIENT_FUNDS"}) == Rejected(ErrorCode.INSUFFICIENT_FUNDS, "")
    # Both present: error.code wins; a null one does not count.
    both = answer(d, BET, {"status": "INSUFFICIENT_FUNDS", "error": {"code": "INVALID_REQUEST"}})
    assert isinstance(both, Rejected) and both.code is ErrorCode.BAD_REQUEST
    null = answer(d, BET, {"status": "INSUFFICIENT_FUNDS", "error": {"code": None}})
    assert isinstance(null, Rejected) and null.code is ErrorCode.INSUFFICIENT_FUNDS
    # The success is still read from the status field.
    ok = answer(d, BET, {"status": "OK", "balance": 5, "currency": "EUR", "txid": "w1"})
    assert ok == Ok(Money(5, EUR), "w1")


def test_an_unmapped_code_is_some_refusal() -> None:
    d = two_fields()
    got = answer(d, BET, {"status": "ERROR", "error": {"code": "LIMIT_REACHED", "message": "daily limit"}})
    assert isinstance(got, Rejected) and got.code is ErrorCode.UNMAPPED
    assert "unmapped wire code 'LIMIT_REACHED'" in got.message and "daily limit" in got.message
    assert answer(d, BET, {"status": "ERROR"}).code is ErrorCode.UNMAPPED  # no error.code: "ERROR" itself
    assert isinstance(answer(d, BET, {"status": "LATER"}), Unknown)  # an "outcome unknown" code
    assert isinstance(answer(d, BET, {"status": {"nested": 1}}), Unknown)  # not a code at all
    assert isinstance(answer(d, BET, {"balance": 5}), Unknown)  # no code anywhere
    assert isinstance(answer(d, BET, {"status": "FUNDS"}, status=503), Unknown)
    data = base()
    data["response"]["replay"] = {"win": "ALREADY_PAID"}
    replaying = dialect(data)
    assert answer(replaying, WIN, {"status": "ALREADY_PAID", "balance": 5, "currency": "EUR", "txid": "w"}) == \
        Ok(Money(5, EUR), "w")
    assert isinstance(answer(replaying, BET, {"status": "ALREADY_PAID"}), Unknown)  # a replay code, not a refusal
    assert isinstance(answer(replaying, BET, {"status": "OK"}, status=400), Unknown)
    # A mapped code at an HTTP status the dialect does not give it: not read as that refusal.
    assert isinstance(answer(d, BET, {"status": "INSUFFICIENT_FUNDS"}, status=400), Unknown)


_TWO_FIELDS_CODES = {"INSUFFICIENT_FUNDS": ErrorCode.INSUFFICIENT_FUNDS, "BET_NOT_FOUND": ErrorCode.ROUND_NOT_FOUND,
                     "INVALID_REQUEST": ErrorCode.BAD_REQUEST}
_code_or_absent = st.one_of(st.none(), st.just("absent"), st.sampled_from([*_TWO_FIELDS_CODES, "WHO_KNOWS"]))


@given(_code_or_absent, st.sampled_from([*_TWO_FIELDS_CODES, "ERROR", "WHO_KNOWS"]))
def test_the_first_code_present_decides(error_code: str | None, status: str) -> None:
    body: dict[str, Any] = {"status": status}
    if error_code != "absent":
        body["error"] = {"code": error_code}
    got = answer(_TWO_FIELDS, BET, body)
    wire = error_code if isinstance(error_code, str) and error_code != "absent" else status
    assert isinstance(got, Rejected)
    assert got.code is _TWO_FIELDS_CODES.get(wire, ErrorCode.UNMAPPED)


def test_partial_code_maps_are_valid_and_answered_with_bad_request_or_unknown() -> None:
    d = two_fields()
    assert ErrorCode.LIMIT_EXCEEDED not in d.spec.codes
    resp = d.encode_response(BET, Rejected(ErrorCode.LIMIT_EXCEEDED, "too much"))
    assert json.loads(resp.body)["status"] == "INVALID_REQUEST"  # BAD_REQUEST's mapping
    data = base()
    data["response"]["codes"] = {"INSUFFICIENT_FUNDS": "FUNDS"}
    resp = dialect(data).encode_response(BET, Rejected(ErrorCode.LIMIT_EXCEEDED, "too much"))
    assert resp.status == 500 and json.loads(resp.body)["status"] == "LATER"  # nothing true but "unknown"
    # Exactness is still required: two canonical codes may not share a wire code.
    data["response"]["codes"] = {"INSUFFICIENT_FUNDS": "X", "LIMIT_EXCEEDED": "X"}
    assert "share a wire code" in problems(data)


_TWO_FIELDS = two_fields()


def test_code_fields_must_be_paths_and_include_the_status_field() -> None:
    data = base()
    data["response"]["code_fields"] = ["error.code"]
    assert "must include the status field 'status'" in problems(data)
    data["response"]["code_fields"] = "status"
    assert "response.code_fields" in problems(data)


# -- amounts as strings of minor units ------------------------------------------------------------


def minor_string() -> DeclarativeDialect:
    data = base()
    data["amount"] = {"encoding": "minor-string"}
    return dialect(data)


def test_minor_string_amounts_and_balances() -> None:
    d = minor_string()
    req = d.encode_call(dataclass_replace(BET, amount=Money(1050, EUR)), NOW)
    assert json.loads(req.body)["amount"] == "1050"
    resp = d.encode_response(BET, Ok(Money(1050, EUR), "w1"))
    assert json.loads(resp.body)["balance"] == "1050"
    assert answer(d, BET, {"status": "OK", "balance": "1050", "currency": "EUR", "txid": "w"}).balance == \
        Money(1050, EUR)
    for wrong in (1050, "10.50", "01", "", " 1", "1e3", True, None):
        got = answer(d, BET, {"status": "OK", "balance": wrong, "currency": "EUR", "txid": "w"})
        assert isinstance(got, Unknown), wrong
        bad = json.loads(req.body) | {"amount": wrong}
        refused = d.decode_request(signed_json(d, "bet", bad), NOW)
        assert isinstance(refused, Rejected) and refused.code is ErrorCode.BAD_REQUEST, (wrong, refused)
    for refused_amount in ("-1", str(INT64_MAX + 1)):
        got = d.decode_request(signed_json(d, "bet", json.loads(req.body) | {"amount": refused_amount}), NOW)
        assert isinstance(got, Rejected) and got.code is ErrorCode.BAD_REQUEST


@given(st.integers(0, INT64_MAX), st.sampled_from(["EUR", "JPY", "BTC", "KWD"]))
def test_minor_string_round_trips_exactly(minor: int, code: str) -> None:
    d = _MINOR_STRING
    call = WalletCall.bet("t", "p", "s", "g", "r", Money(minor, currency(code)))
    assert d.decode_request(d.encode_call(call, NOW), NOW) == call
    assert d.decode_response(call, d.encode_response(call, Ok(Money(minor, currency(code)), "w"))) == \
        Ok(Money(minor, currency(code)), "w")


_MINOR_STRING = minor_string()


def test_minor_string_takes_no_places() -> None:
    data = base()
    data["amount"] = {"encoding": "minor-string", "places": 2}
    assert "minor units take no places" in problems(data)


# -- answers that leave things out ----------------------------------------------------------------


def no_currency() -> DeclarativeDialect:
    data = base()
    data["response"]["ok_fields"] = {"status": "status", "balance": "balance", "player": "player_id",
                                     "session": "session_token", "txid": "wallet_tx_id"}
    return dialect(data)


def test_a_missing_currency_comes_from_the_call_or_the_account() -> None:
    d = no_currency()
    assert answer(d, BET, {"status": "OK", "balance": 7, "txid": "w"}) == Ok(Money(7, EUR), "w")
    balance = WalletCall.balance("p1", "s1")
    jpy = answer(d, dataclass_replace(balance, currency_hint="JPY"), {"status": "OK", "balance": 7})
    assert jpy == Ok(Money(7, currency("JPY")))
    unknown = answer(d, balance, {"status": "OK", "balance": 7})
    assert isinstance(unknown, Unknown) and "currency is not known" in unknown.reason
    # The wallet side answers without a currency, and its own provider side reads it back.
    assert d.decode_response(BET, d.encode_response(BET, Ok(Money(9, EUR), "w9"))) == Ok(Money(9, EUR), "w9")


def test_an_authenticate_answer_may_leave_out_player_token_and_balance() -> None:
    d = dialect(base())
    auth = WalletCall.authenticate("launch", "g1")
    full = answer(d, auth, {"status": "OK", "balance": 5, "currency": "EUR", "player": "p", "session": "s"})
    assert full == Ok(Money(5, EUR), player_id="p", session_token="s") and not full.missing
    only_player = answer(d, auth, {"status": "OK", "currency": "EUR", "player": "p"})
    assert only_player == Ok(Money(0, EUR), player_id="p")
    assert only_player.missing == {"balance", "session_token"}
    nothing = answer(d, dataclass_replace(auth, currency_hint="USD"), {"status": "OK"})
    assert isinstance(nothing, Ok) and nothing.balance == Money(0, currency("USD"))
    assert nothing.missing == {"balance", "player_id", "session_token"}
    # Without a currency in the answer or given by the caller there is nothing honest to return.
    assert isinstance(answer(d, auth, {"status": "OK", "player": "p"}), Unknown)
    assert isinstance(answer(d, auth, {"status": "OK", "currency": "EUR", "player": 5}), Unknown)
    # Other successes still need their balance.
    assert isinstance(answer(d, BET, {"status": "OK", "currency": "EUR", "txid": "w"}), Unknown)


def test_ok_fields_need_only_the_balance() -> None:
    data = base()
    data["response"]["ok_fields"] = {"status": "status"}
    text = problems(data)
    assert "must carry balance" in text and "must carry currency" not in text


# -- GET with query fields ------------------------------------------------------------------------


def get_dialect(scheme: dict[str, Any] | None = None) -> DeclarativeDialect:
    data = base()
    for o in data["operations"]:
        o["method"] = "GET"
    if scheme is not None:
        data["signature"] = scheme
    return dialect(data)


def test_get_puts_the_fields_in_the_query() -> None:
    d = get_dialect()
    call = WalletCall.win("t 1&x=y", "p/1?", "s+1%", "g:1", "r'(1)", Money(300, EUR), WinReason.FREE_SPIN, True)
    req = d.encode_call(call, NOW)
    assert req.method == "GET" and req.body == b"" and "Content-Type" not in req.headers
    path, _, query = req.path.partition("?")
    assert path == "win"
    assert dict(parse_qsl(query)) == {"player": "p/1?", "session": "s+1%", "game": "g:1", "round": "r'(1)",
                                      "tx": "t 1&x=y", "currency": "EUR", "amount": "300", "reason": "free_spin",
                                      "closed": "true"}
    # An HTTP client sends the query as it is: the signature over it still verifies.
    assert yarl.URL(f"http://h/w/{req.path}").raw_query_string == query
    assert d.decode_request(req, NOW) == call
    assert d.decode_request(req, NOW) == d.decode_request(HttpRequest("GET", req.path, req.headers), NOW)
    # The same path by POST is not this operation; a query without a listed field is refused.
    assert code_of(d.decode_request(HttpRequest("POST", req.path, req.headers, b"{}"), NOW)) is ErrorCode.BAD_REQUEST
    assert code_of(d.decode_request(HttpRequest("GET", "win?tx=1", req.headers), NOW)) in (
        ErrorCode.INVALID_SIGNATURE, ErrorCode.BAD_REQUEST)


_GET_TIMED_SIG = {"scheme": "hmac-md5-timestamp", "header": "X-Signature", "timestamp_header": "X-Timestamp"}


def test_get_round_trips_every_operation_and_refuses_bad_values() -> None:
    d = get_dialect(_GET_TIMED_SIG)
    for call in (WalletCall.authenticate("tok", "g"), WalletCall.balance("p", "s"), BET, WIN, ROLLBACK):
        assert d.decode_request(d.encode_call(call, NOW), NOW) == call
    flipped = d.encode_call(BET, NOW)
    tampered = HttpRequest("GET", flipped.path.replace("amount=150", "amount=15"), flipped.headers)
    assert code_of(d.decode_request(tampered, NOW)) is ErrorCode.INVALID_SIGNATURE


_GET_TIMED = get_dialect(_GET_TIMED_SIG)
_ids = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20)


@given(_ids, _ids, _ids, st.integers(0, INT64_MAX))
def test_any_ids_cross_a_get_query_exactly_and_signed(player: str, session: str, tx: str, minor: int) -> None:
    """Whatever the ids hold (``&``, ``=``, ``%``, ``+``, non-ASCII), the query an HTTP client sends is
    the one signed, and the wallet side reads the call back."""
    d = _GET_TIMED
    call = WalletCall.bet(tx, player, session, "g", "r", Money(minor, EUR))
    req = d.encode_call(call, NOW)
    query = req.path.partition("?")[2]
    assert yarl.URL(f"http://h/w/{req.path}").raw_query_string == query
    assert d.decode_request(req, NOW) == call


def test_get_fields_are_flat() -> None:
    data = base()
    data["operations"][1]["method"] = "GET"
    data["operations"][1]["fields"] = {"who.player": "player_id", "session": "session_token"}
    assert "GET query strings are flat" in problems(data)


# -- signature schemes ----------------------------------------------------------------------------


SCHEME_CONFIGS: dict[str, tuple[dict[str, Any], str]] = {
    "none": ({"scheme": "none"}, "json"),
    "hmac-sha256": ({"scheme": "hmac-sha256", "header": "X-Sig"}, "json"),
    "hmac-sha256-json": ({"scheme": "hmac-sha256-json", "header": "X-Sig"}, "json"),
    "sha256-body-secret": ({"scheme": "sha256-body-secret", "header": "X-Sig", "encoding": "base64"}, "json"),
    "md5-sorted-params": ({"scheme": "md5-sorted-params", "param": "hash"}, "form"),
    "hmac-sha256-sorted-params": ({"scheme": "hmac-sha256-sorted-params", "header": "X-Sig"}, "json"),
    "hmac-md5-timestamp": ({"scheme": "hmac-md5-timestamp", "header": "X-Sig", "timestamp_header": "X-Time"}, "json"),
    "rsa-sha256": ({"scheme": "rsa-sha256", "header": "X-Sig", "sign_responses": True}, "json"),
    "static-token": ({"scheme": "static-token", "query": "authToken"}, "json"),
}


def signed_by(name: str, secret: str = SECRET, fmt: str | None = None) -> DeclarativeDialect:
    data = base()
    cfg, default_fmt = SCHEME_CONFIGS[name]
    data["signature"] = cfg
    data["request"] = {"format": fmt or default_fmt}
    if data["request"]["format"] == "form":
        data["amount"] = {"encoding": "decimal-number", "places": 2}
    return dialect(data, secret)


def test_every_scheme_is_tried_here() -> None:
    assert set(SCHEME_CONFIGS) == set(SCHEMES)


@pytest.mark.parametrize("name", sorted(SCHEME_CONFIGS))
def test_every_scheme_signs_and_verifies_and_a_wrong_secret_fails(name: str) -> None:
    d = signed_by(name)
    for call in (BET, WIN, ROLLBACK, WalletCall.balance("p", "s")):
        req = d.encode_call(call, NOW)
        assert d.decode_request(req, NOW) == call
        wrong = signed_by(name, SECRET + "-not-the-secret").encode_call(call, NOW)
        refused = d.decode_request(wrong, NOW)
        if name == "none":
            assert refused == call  # nothing to refuse
            continue
        assert isinstance(refused, Rejected) and refused.code is ErrorCode.INVALID_SIGNATURE, (name, refused)
        if name in ("static-token", "none"):
            continue  # a static token says who sends, not what
        body = req.body.replace(b"p1", b"p9").replace(b'"p"', b'"q"').replace(b"=p&", b"=q&")
        assert body != req.body
        tampered = HttpRequest(req.method, req.path, req.headers, body)
        got = d.decode_request(tampered, NOW)
        assert isinstance(got, Rejected) and got.code is ErrorCode.INVALID_SIGNATURE, (name, got)


def test_hmac_sha256_json_signs_the_body_re_serialised() -> None:
    d = signed_by("hmac-sha256-json")
    req = d.encode_call(dataclass_replace(BET, player_id="jos\u00e9"), NOW)
    text = json.dumps(json.loads(req.body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert req.headers["X-Sig"] == hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
    # Key order and whitespace as sent do not matter; the values do.
    shuffled = json.dumps(dict(reversed(list(json.loads(req.body).items()))), indent=2).encode()
    assert d.decode_request(HttpRequest(req.method, req.path, req.headers, shuffled), NOW) == \
        dataclass_replace(BET, player_id="jos\u00e9")


def test_hmac_md5_timestamp_binds_the_time() -> None:
    d = signed_by("hmac-md5-timestamp")
    assert d.signature_has_time and not signed_by("hmac-sha256").signature_has_time
    req = d.encode_call(BET, NOW)
    assert req.headers["X-Time"] == str(int(NOW))
    assert req.headers["X-Sig"] == hmac.new(SECRET.encode(), str(int(NOW)).encode() + req.body, hashlib.md5).hexdigest()
    assert d.decode_request(req, NOW + 300) == BET
    assert d.decode_request(req, NOW - 300) == BET
    for late in (NOW + 301, NOW - 301, NOW + 3600):
        stale = d.decode_request(req, late)
        assert isinstance(stale, Rejected) and stale.code is ErrorCode.INVALID_SIGNATURE and "300 s" in stale.message
    no_time = HttpRequest(req.method, req.path, {k: v for k, v in req.headers.items() if k != "X-Time"}, req.body)
    assert code_of(d.decode_request(no_time, NOW)) is ErrorCode.INVALID_SIGNATURE


def test_hmac_sha256_sorted_params_signs_the_sorted_fields() -> None:
    d = signed_by("hmac-sha256-sorted-params")
    req = d.encode_call(BET, NOW)
    text = "amount=150&currency=EUR&game=g1&player=p1&round=r1&session=s1&tx=t1"
    assert req.headers["X-Sig"] == hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
    form = signed_by("hmac-sha256-sorted-params", fmt="form")
    assert form.decode_request(form.encode_call(WIN, NOW), NOW) == WIN


def test_scheme_settings_are_validated() -> None:
    for cfg, needle in (({"scheme": "hmac-md5-timestamp", "header": "X"}, "signature.timestamp_header"),
                        ({"scheme": "hmac-sha256-json"}, "signature.header"),
                        ({"scheme": "hmac-sha256-sorted-params", "param": "sig"}, "signature.param"),
                        ({"scheme": "md5-sorted-params", "param": "hash"}, "signs form parameters"),
                        ({"scheme": "hmac-md5-timestamp", "header": "X", "timestamp_header": "T",
                          "sign_responses": True}, "sign_responses"),
                        ({"scheme": "rot13"}, "signature.scheme"),
                        ({"scheme": "none", "colour": "red"}, "signature.colour")):
        data = base()
        data["signature"] = cfg
        assert needle in problems(data), cfg


# -- semantics --------------------------------------------------------------------------------------


def with_semantics(sem: dict[str, Any], data: dict[str, Any] | None = None) -> dict[str, Any]:
    data = copy.deepcopy(data or base())
    data["semantics"] = sem
    return data


def strip(data: dict[str, Any], *sources: str) -> dict[str, Any]:
    for o in data["operations"]:
        o["fields"] = {k: v for k, v in o["fields"].items() if v not in sources}
    return data


def test_semantics_take_required_fields_away_and_refuse_them_present() -> None:
    text = problems(with_semantics({"player": "session", "currency": "account"}))
    assert "carries player_id, but the session identifies the player" in text
    assert "carries currency, but calls carry no currency" in text
    text = problems(with_semantics({"rounds": False, "win_bet": "none"}))
    assert "carries round_id, but there are no rounds" in text and "carries round_closed" in text
    ok = load_spec(strip(with_semantics({"player": "session", "currency": "account", "rounds": False,
                                         "win_bet": "none"}), "player_id", "currency", "round_id", "round_closed"))
    assert not ok.semantics.names_player and not ok.semantics.carries_currency
    # PROTOCOL.md's semantics still need them.
    assert "must carry player_id" in problems(strip(base(), "player_id"))


def test_named_bets_rollback_amounts_and_operator_sessions() -> None:
    text = problems(with_semantics({"win_bet": "named"}))
    assert "(win win): must carry bet_tx_id" in text
    data = base()
    data["operations"][2]["fields"]["bet"] = "bet_tx_id"
    assert "carries bet_tx_id, but only a win names the bet it pays" in problems(data)
    data = base()
    data["operations"][3]["fields"]["bet"] = "bet_tx_id"  # allowed on wins whatever win_bet says
    data["operations"][4]["fields"]["ref2"] = "session_ref"  # allowed anywhere
    load_spec(data)
    data["operations"][4]["fields"]["amount"] = "amount"
    assert "a rollback carries no amount unless semantics.rollback_amount = true" in problems(data)
    load_spec(with_semantics({"rollback_amount": True}, data))
    assert "(rollback rollback): must carry amount" in problems(with_semantics({"rollback_amount": True}))
    assert "no authenticate operation when the operator makes the sessions" in \
        problems(with_semantics({"sessions": "operator"}))
    without = base()
    del without["operations"][0]
    load_spec(with_semantics({"sessions": "operator"}, without))
    assert "nothing for authenticate" in problems(without)
    assert "semantics.colour: unknown axis" in problems(with_semantics({"colour": "red"}))


def test_rollback_found_by_tx_needs_no_round_or_game() -> None:
    data = base()
    data["operations"][4]["fields"] = {"tx": "tx_id", "ref": "ref_tx_id", "player": "player_id",
                                       "session": "session_token"}
    assert "must carry game_id" in problems(data)
    d = dialect(with_semantics({"rollback_by": "tx"}, data))
    assert d.decode_request(d.encode_call(ROLLBACK, NOW), NOW) == dataclass_replace(ROLLBACK, game_id=None,
                                                                                    round_id=None)


def test_the_session_wallet_round_trips_what_its_wire_carries() -> None:
    d = dialects.get(str(ROOT / "dialects" / "session-wallet.toml"), SECRET)
    assert isinstance(d, DeclarativeDialect)
    bet = WalletCall(Op.BET, session_token="s1", tx_id="b1", game_id="g1", amount=Money(1050, EUR))
    req = d.encode_call(dataclass_replace(bet, player_id="p1", round_id="r1", currency_hint="EUR"), NOW)
    assert json.loads(req.body) == {"sessionToken": "s1", "transactionId": "b1", "gameId": "g1", "amount": "1050"}
    assert d.decode_request(req, NOW) == bet
    win = WalletCall(Op.WIN, session_token="s1", tx_id="w1", game_id="g1", amount=Money(7, EUR),
                     reason=WinReason.REGULAR, round_closed=False, bet_tx_id="b1")
    req = d.encode_call(win, NOW)
    assert json.loads(req.body)["relatedBetTransactionId"] == "b1"
    assert d.decode_request(req, NOW) == win
    free = dataclass_replace(win, reason=WinReason.FREE_SPIN, bet_tx_id=None)
    req = d.encode_call(free, NOW)
    assert "relatedBetTransactionId" not in json.loads(req.body)  # a win that pays no bet names none
    assert d.decode_request(req, NOW) == free
    rollback = WalletCall(Op.ROLLBACK, session_token="s1", tx_id="r1", ref_tx_id="b1", amount=Money(1050, EUR))
    assert json.loads(d.encode_call(rollback, NOW).body)["amount"] == "1050"
    assert d.decode_request(d.encode_call(rollback, NOW), NOW) == rollback
    unknown_bet = dataclass_replace(rollback, amount=None)
    assert json.loads(d.encode_call(unknown_bet, NOW).body)["amount"] == "0"  # the wire wants one; none known
    with pytest.raises(DialectError):
        d.encode_call(WalletCall.authenticate("t", "g"), NOW)  # the operator makes the sessions
    # Answers: no currency (the call's), codes in two places.
    assert d.decode_response(bet, HttpResponse(200, {}, b'{"status":"OK","balance":"8950","transactionId":"x"}')) \
        == Ok(Money(8950, EUR), "x")
    funds = d.decode_response(bet, HttpResponse(200, {}, b'{"status":"INSUFFICIENT_FUNDS"}'))
    assert funds == Rejected(ErrorCode.INSUFFICIENT_FUNDS, "")
    closed = d.decode_response(bet, HttpResponse(200, {}, b'{"status":"ERROR","error":{"code":"ROUND_CLOSED"}}'))
    assert isinstance(closed, Rejected) and closed.code is ErrorCode.UNMAPPED


_SESSION = dialects.get(str(ROOT / "dialects" / "session-wallet.toml"), SECRET)


@given(_ids, _ids, _ids, _ids, st.integers(0, INT64_MAX), st.sampled_from(list(WinReason)), st.booleans())
def test_the_session_wallet_round_trips_any_call(session: str, tx: str, game: str, ref: str, minor: int,
                                                 reason: WinReason, known: bool) -> None:
    """Every call the shape A wire carries comes back as it went, whatever it leaves out."""
    amount = Money(minor, EUR)
    calls = [
        WalletCall(Op.BALANCE, session_token=session),
        WalletCall(Op.BET, session_token=session, tx_id=tx, game_id=game, amount=amount),
        WalletCall(Op.WIN, session_token=session, tx_id=tx, game_id=game, amount=amount, reason=reason,
                   round_closed=False, bet_tx_id=ref if known or reason is WinReason.REGULAR else None),
        WalletCall(Op.ROLLBACK, session_token=session, tx_id=tx, ref_tx_id=ref, amount=amount),
    ]
    for call in calls:
        assert _SESSION.decode_request(_SESSION.encode_call(call, NOW), NOW) == call


def test_the_query_wallet_file_speaks_get_and_reads_a_partial_user_info() -> None:
    d = dialects.get(str(ROOT / "dialects" / "query-wallet.toml"), SECRET)
    assert isinstance(d, DeclarativeDialect) and d.signature_has_time
    auth = WalletCall.authenticate("launch-1", "g1")
    req = d.encode_call(auth, NOW)
    assert (req.method, req.path, req.body) == ("GET", "userinfo?token=launch-1&game=g1", b"")
    assert req.headers["X-Signature"] == hmac.new(SECRET.encode(), b"1700000000token=launch-1&game=g1",
                                                  hashlib.md5).hexdigest()
    info = d.decode_response(auth, HttpResponse(200, {}, b'{"user":"p1","currency":"EUR"}'))
    assert isinstance(info, Ok) and info.player_id == "p1" and info.missing == {"balance", "session_token"}
    refused = d.decode_response(BET, HttpResponse(402, {}, b'{"code":104,"msg":"no money"}'))
    assert refused == Rejected(ErrorCode.INSUFFICIENT_FUNDS, "no money")
    for call in (auth, WalletCall.balance("p1", "launch-1"), BET, WIN, ROLLBACK):
        assert d.decode_request(d.encode_call(call, NOW), NOW) == call


def test_shipped_shape_files_pass_dialect_check(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("session-wallet", "query-wallet"):
        path = ROOT / "dialects" / f"{name}.toml"
        assert main(["dialect", "check", str(path)]) == 0
        out = capsys.readouterr().out
        assert f"ok - dialect {name}" in out and "semantics:" in out
        assert len(path.read_text().splitlines()) < 60
        load_file(str(path))


def test_dialect_sample_prints_the_semantics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dialect", "sample", str(ROOT / "dialects" / "session-wallet.toml")]) == 0
    out = capsys.readouterr().out
    assert 'player = "session": The session identifies the player' in out
    assert "authenticate: none (the operator makes the sessions)" in out
    assert '"relatedBetTransactionId":"tx-1"' in out
    assert main(["dialect", "sample", "canonical"]) == 0
    assert "tx_scope = \"wallet\": as PROTOCOL.md" in capsys.readouterr().out


def test_dialect_check_names_every_semantic_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "dialects" / "session-wallet.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('sessions = "operator"', 'sessions = "authenticate"')
                   .replace('fields = { sessionToken = "session_token" }',
                            'fields = { sessionToken = "session_token", playerId = "player_id" }'))
    assert main(["dialect", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "nothing for authenticate" in err and "carries player_id" in err


# -- variants: one defect in the dialect's own wire ------------------------------------------------


def test_amount_string_on_a_numeric_wire_sends_the_amount_as_text() -> None:
    d = dialect(base())
    req = d.encode_variant(BET, NOW, "amount-string")
    assert json.loads(req.body)["amount"] == "150"
    got = d.decode_request(req, NOW)  # signed over the defect: refused for the defect, not the signature
    assert isinstance(got, Rejected) and got.code is ErrorCode.BAD_REQUEST
    data = base()
    data["amount"] = {"encoding": "decimal-number", "places": 2}
    assert json.loads(dialect(data).encode_variant(BET, NOW, "amount-string").body)["amount"] == "1.50"


def test_variants_that_mean_nothing_on_a_wire_are_refused() -> None:
    with pytest.raises(DialectError):
        minor_string().encode_variant(BET, NOW, "amount-string")  # the amount is a string already
    form = signed_by("md5-sorted-params")
    for variant in ("amount-string", "not-json", "not-an-object"):
        with pytest.raises(DialectError):
            form.encode_variant(BET, NOW, variant)
    session = dialects.variants(dialects.get(str(ROOT / "dialects" / "session-wallet.toml"), SECRET))
    assert session is not None
    bet = WalletCall(Op.BET, session_token="s1", tx_id="b1", game_id="g1", amount=Money(1050, EUR))
    for variant in ("unknown-currency", "bad-reason", "round-closed-not-boolean"):
        with pytest.raises(DialectError):
            session.encode_variant(bet, NOW, variant)
    with pytest.raises(DialectError):
        dialect(base()).encode_variant(BET, NOW, "no-such-variant")
    with pytest.raises(DialectError):
        get_dialect().encode_variant(BET, NOW, "oversized")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("wire", ["json-minor", "json-scaled", "json-decimal", "minor-string", "form"])
def test_every_variant_is_signed_and_refused_for_its_defect(variant: str, wire: str) -> None:
    """The wallet side never blames the signature; it refuses the defect (or, an unknown field or a huge
    amount, judges the call it is)."""
    data = base()
    if wire == "json-scaled":
        data["amount"] = {"encoding": "scaled", "places": 5}  # past 64 bits in its own unit too
    elif wire == "json-decimal":
        data["amount"] = {"encoding": "decimal-number", "places": 2}
    elif wire == "minor-string":
        data["amount"] = {"encoding": "minor-string"}
    elif wire == "form":
        data["request"] = {"format": "form"}
        data["signature"] = {"scheme": "md5-sorted-params", "param": "hash"}
    d = dialect(data)
    for call in (BET, WIN):
        try:
            req = d.encode_variant(call, NOW, variant)
        except DialectError:
            continue
        got = d.decode_request(req, NOW)
        if variant == "extra-field":
            assert got == call
        elif variant == "amount-past-64-bit":
            assert isinstance(got, Rejected) and got.code is ErrorCode.BAD_REQUEST
        elif variant == "unknown-currency":
            assert isinstance(got, Rejected) and got.code is ErrorCode.CURRENCY_MISMATCH
        else:
            assert isinstance(got, Rejected) and got.code is ErrorCode.BAD_REQUEST, (variant, got, req.body[:200])


def test_variants_is_none_for_a_dialect_without_them() -> None:
    class Plain(dialects.DialectBase):  # declares no optional capability: the base's defaults
        name = "plain"

    assert dialects.variants(dialect(base())) is not None
    assert dialects.variants(Plain()) is None  # type: ignore[arg-type]  # (no encode_call...: not a whole dialect)


# -- helpers ----------------------------------------------------------------------------------------


def dataclass_replace(call: WalletCall, **changes: Any) -> WalletCall:
    import dataclasses

    return dataclasses.replace(call, **changes)


def code_of(got: WalletCall | Rejected) -> ErrorCode | None:
    return got.code if isinstance(got, Rejected) else None


def signed_json(d: DeclarativeDialect, path: str, body: dict[str, Any]) -> HttpRequest:
    raw = json.dumps(body).encode()
    return HttpRequest("POST", path, {"Content-Type": "application/json", "X-Sig": d._digest(raw)}, raw)


@pytest.mark.parametrize(("written", "js"), [
    ("1.50", "1.5"), ("2.00", "2"), ("100", "100"), ("0.1", "0.1"), ("-0.50", "-0.5"), ("0.000001", "0.000001"),
    ("0.00000001", "1e-8"), ("0.00000015", "1.5e-7"), ("1e21", "1e+21"), ("0.0", "0"),
    ("123456789012345678901", "123456789012345678901"),  # an integer stays as written
])
def test_reserialised_json_writes_numbers_as_a_parser_does(written: str, js: str) -> None:
    """HMAC over re-serialised JSON: a wallet that parsed ``1.50`` signs ``1.5`` (JSON.stringify's digits)."""
    from simulator.protocol.dialects.signatures import canonical_json

    assert canonical_json(f'{{"b": {written}, "a": 1}}'.encode()) == f'{{"a":1,"b":{js}}}'.encode()

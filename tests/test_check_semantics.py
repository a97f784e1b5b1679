"""The check's model under a dialect's declared semantics (docs/dialects.md): it expects only what they imply.

Fast (pure model, no wallet): each non-canonical value of every axis, with Hypothesis where an invariant
holds for any sequence.  The canonical semantics are the existing suites' business (test_check*.py,
test_wallet_machine.py).
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.check import request
from simulator.check.checker import Checker, RuleTally, excluded_codes, malformed_body, replaced_rules
from simulator.check.model import ANY_CODE, Outcomes, WalletModel
from simulator.check.protocol import Violation
from simulator.check.report import curl_script
from simulator.check.runner import Failure
from simulator.check.target import Sent
from simulator.protocol import signing
from simulator.protocol.calls import Ok, Outcome, Rejected, WalletCall, WinReason, call_from_json, call_json
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects import DialectError
from simulator.protocol.dialects.canonical import CanonicalDialect, call_to_json
from simulator.protocol.dialects.semantics import CANONICAL, RULE_IDS, Semantics
from simulator.protocol.findings import RULES
from simulator.protocol.money import Money

NOW = 1_000_000.0


def model(**axes: object) -> WalletModel:
    """A model with two EUR players (p1: 1000, p2: 500), each with a live session (s1, s2)."""
    m = WalletModel(semantics=Semantics(**axes))  # type: ignore[arg-type]
    for pid, balance in (("p1", 1000), ("p2", 500)):
        m.create_player(pid, "EUR", balance)
        m.issue_token(f"L{pid}", pid, 3600)
        m.record_session(f"L{pid}", f"s{pid[1]}", NOW)
    return m


def bet(tx: str, pid: str = "p1", sess: str = "s1", rnd: str = "r1", amount: int = 100,
        cur: str = "EUR") -> WalletCall:
    return WalletCall.bet(tx, pid, sess, "g1", rnd, Money.of(amount, cur))


def win(tx: str, pid: str = "p1", sess: str = "s1", rnd: str = "r1", amount: int = 50, cur: str = "EUR",
        reason: WinReason = WinReason.REGULAR, closed: bool = False, bet_tx: str | None = None) -> WalletCall:
    return dataclasses.replace(WalletCall.win(tx, pid, sess, "g1", rnd, Money.of(amount, cur), reason, closed),
                               bet_tx_id=bet_tx)


def rollback(tx: str, ref: str, pid: str = "p1", sess: str = "s1", rnd: str = "r1", game: str = "g1",
             amount: int | None = None) -> WalletCall:
    call = WalletCall.rollback(tx, ref, pid, sess, game, rnd)
    return dataclasses.replace(call, amount=Money.of(amount, "EUR")) if amount is not None else call


def ok(m: WalletModel, call: WalletCall) -> int:
    """Apply ``call``, which must be accepted; the balance it answers."""
    out = m.outcomes(call, NOW)
    assert out.primary[0] == "ok", out
    assert out.accepts, out
    m.commit(call, out.accepts[0], NOW)
    return out.accepts[0].balance


def only_refused(out: Outcomes, *codes: ErrorCode) -> None:
    assert out.primary[0] == "rejected", out
    assert not out.accepts, out
    assert set(codes) <= out.codes, out


def test_every_dialect_rule_is_a_finding_rule() -> None:
    assert set(RULE_IDS.values()) <= set(RULES)


def test_the_default_model_is_the_canonical_protocol() -> None:
    m = WalletModel()
    assert m.semantics == CANONICAL
    m.create_player("p1", "EUR", 100)
    m.issue_token("L", "p1", 60)
    m.record_session("L", "s1", NOW)
    only_refused(m.outcomes(bet("t1", cur="USD"), NOW), ErrorCode.CURRENCY_MISMATCH)
    assert m.outcomes(bet("t1", cur="USD"), NOW).rule == ""
    only_refused(m.outcomes(bet("t1", pid="nobody"), NOW), ErrorCode.PLAYER_NOT_FOUND)


# -- player = "session" -------------------------------------------------------------------

def test_session_names_the_player() -> None:
    m = model(player="session")
    # The call names nobody (or anybody): the session's owner is the player.
    assert ok(m, bet("t1", pid="whoever", sess="s2")) == 400
    assert m.players["p2"].balance == 400 and m.players["p1"].balance == 1000
    out = m.outcomes(WalletCall.balance("nobody", "s1"), NOW)
    assert out.primary == ("ok", 1000, None)


@given(op=st.sampled_from(["bet", "win", "rollback", "balance"]), pid=st.sampled_from(["p1", "p2", "nobody"]))
@settings(max_examples=40)
def test_an_unknown_session_is_invalid_token_and_never_player_not_found(op: str, pid: str) -> None:
    m = model(player="session")
    call = {"bet": bet("t9", pid=pid, sess="forged"), "win": win("t9", pid=pid, sess="forged"),
            "rollback": rollback("t9", "t0", pid=pid, sess="forged"),
            "balance": WalletCall.balance(pid, "forged")}[op]
    out = m.outcomes(call, NOW)
    only_refused(out, ErrorCode.INVALID_TOKEN)
    assert ErrorCode.PLAYER_NOT_FOUND not in out.codes
    assert out.rule == "dialect-player-session"


# -- currency = "account" ----------------------------------------------------------------------

def test_amounts_are_in_the_accounts_currency() -> None:
    m = model(currency="account")
    out = m.outcomes(bet("t1", cur="USD"), NOW)
    assert out.primary == ("ok", 900, None) and ErrorCode.CURRENCY_MISMATCH not in out.codes
    ok(m, bet("t1"))
    # The currency takes no part in a replay: the wire does not carry it.
    again = m.outcomes(bet("t1", cur="JPY"), NOW)
    assert again.primary[0] == "ok" and again.accepts[0].balance == 900 and not again.accepts[0].effects


# -- rounds = false ------------------------------------------------------------------------

def test_without_rounds_nothing_closes_and_round_ids_do_not_count() -> None:
    m = model(rounds=False, win_bet="none")
    ok(m, win("w1", closed=True, reason=WinReason.PROMO))
    out = m.outcomes(bet("t1"), NOW)  # the "closed" round: still open, there are no rounds
    assert out.primary == ("ok", 1000 + 50 - 100, None)
    ok(m, bet("t1"))
    replay = m.outcomes(bet("t1", rnd="another"), NOW)  # round_id is not sent: the same call
    assert replay.primary[0] == "ok" and not replay.accepts[0].effects
    assert ErrorCode.ROUND_CLOSED not in replay.codes


# -- win_bet --------------------------------------------------------------------------------

def test_a_named_win_needs_its_bet_from_this_player() -> None:
    m = model(win_bet="named")
    out = m.outcomes(win("w1", bet_tx=None), NOW)
    only_refused(out, ErrorCode.ROUND_NOT_FOUND)
    assert out.rule == "dialect-win-bet-named"
    ok(m, bet("b2", pid="p2", sess="s2"))
    only_refused(m.outcomes(win("w1", bet_tx="b2"), NOW), ErrorCode.ROUND_NOT_FOUND)  # another player's bet
    ok(m, bet("b1", rnd="elsewhere"))
    # The bet it names decides, not the round the win names.
    assert m.outcomes(win("w1", rnd="r-other", bet_tx="b1"), NOW).primary == ("ok", 900 + 50, None)
    ok(m, rollback("rb1", "b1", rnd="elsewhere"))
    after = m.outcomes(win("w1", bet_tx="b1"), NOW)
    assert after.codes == {ErrorCode.ROUND_NOT_FOUND} and after.accepts  # a choice: paid or ROUND_NOT_FOUND
    # Stand-alone reasons need no bet.
    assert m.outcomes(win("w2", reason=WinReason.FREE_SPIN), NOW).primary[0] == "ok"


def test_a_win_that_stands_alone_needs_no_bet() -> None:
    m = model(win_bet="none")
    out = m.outcomes(win("w1"), NOW)
    assert out.primary == ("ok", 1050, None) and not out.codes
    assert out.rule == "dialect-win-bet-none"


# -- rollback_by --------------------------------------------------------------------------

@given(rnd=st.sampled_from(["r1", "r2", "zz"]), game=st.sampled_from(["g1", "g2"]))
@settings(max_examples=20)
def test_rollback_by_tx_refunds_whatever_round_or_game_it_names(rnd: str, game: str) -> None:
    m = model(rollback_by="tx")
    ok(m, bet("b1"))
    out = m.outcomes(rollback("rb", "b1", rnd=rnd, game=game), NOW)
    assert out.primary == ("ok", 1000, None) and len(out.accepts) == 1 and not out.codes
    assert out.rule == ("" if (rnd, game) == ("r1", "g1") else "dialect-rollback-by-tx")


def test_rollback_by_tx_never_refunds_another_players_bet() -> None:
    m = model(rollback_by="tx")
    ok(m, bet("b1"))
    out = m.outcomes(rollback("rb", "b1", pid="p2", sess="s2"), NOW)
    assert all(a.balance == 500 for a in out.accepts)


@given(rnd=st.text(min_size=1, max_size=3).filter(lambda r: r != "r1"), amount=st.integers(1, 1000))
@settings(max_examples=30)
def test_rollback_by_round_naming_another_round_never_refunds(rnd: str, amount: int) -> None:
    m = model(rollback_by="round")
    ok(m, bet("b1", amount=amount))
    out = m.outcomes(rollback("rb", "b1", rnd=rnd), NOW)
    assert all(a.balance == 1000 - amount for a in out.accepts)
    assert out.codes == {ErrorCode.ROLLBACK_NOT_ALLOWED}
    assert out.rule == "dialect-rollback-by-round"
    # Naming its round, it is found and refunded.
    assert m.outcomes(rollback("rb2", "b1"), NOW).primary == ("ok", 1000, None)


# -- tx_scope = "player" -------------------------------------------------------------------

def test_the_same_tx_id_from_two_players_is_two_transactions() -> None:
    m = model(tx_scope="player")
    ok(m, bet("t1"))
    out = m.outcomes(bet("t1", pid="p2", sess="s2"), NOW)
    assert out.primary == ("ok", 400, None) and out.rule == "dialect-tx-scope-player"
    ok(m, bet("t1", pid="p2", sess="s2"))
    ok(m, rollback("rb", "t1", pid="p2", sess="s2"))  # p2's t1 refunded, p1's untouched
    assert (m.players["p1"].balance, m.players["p2"].balance) == (900, 500)
    # a replay is a replay per player
    replay = m.outcomes(bet("t1"), NOW)
    assert replay.primary[0] == "ok" and not replay.accepts[0].effects


@given(st.lists(st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from(["a", "b", "c"]),
                          st.integers(1, 50)), max_size=12))
@settings(max_examples=60)
def test_per_player_tx_ids_each_player_pays_each_of_its_ids_once(calls: list[tuple[str, str, int]]) -> None:
    m = model(tx_scope="player")
    first: dict[tuple[str, str], int] = {}
    for pid, tx, amount in calls:
        call = bet(tx, pid=pid, sess=f"s{pid[1]}", amount=amount)
        out = m.outcomes(call, NOW)
        if out.primary[0] == "ok":
            m.commit(call, out.accepts[0], NOW)
        if (pid, tx) not in first:
            first[(pid, tx)] = amount
            assert out.primary[0] == "ok"  # funds suffice: 3 ids x 50 < 500
        else:
            assert out.primary[0] == ("ok" if first[(pid, tx)] == amount else "rejected")
    for pid, opening in (("p1", 1000), ("p2", 500)):
        assert m.players[pid].balance == opening - sum(a for (p, _), a in first.items() if p == pid)


# -- zero_bet = false --------------------------------------------------------------------

def test_a_zero_bet_is_refused_with_any_code() -> None:
    m = model(zero_bet=False)
    out = m.outcomes(bet("t0", amount=0), NOW)
    assert out.primary[0] == "rejected" and not out.accepts
    assert out.codes == ANY_CODE and ErrorCode.UNMAPPED in out.codes
    assert out.rule == "dialect-zero-bet-false"
    assert m.outcomes(bet("t1", amount=1), NOW).primary == ("ok", 999, None)


def test_a_zero_bet_is_valid_in_the_canonical_protocol() -> None:
    m = model()
    assert m.outcomes(bet("t0", amount=0), NOW).primary == ("ok", 1000, None)


# -- wins_need_live_session ------------------------------------------------------------------

def test_a_win_on_an_ended_session_may_be_session_expired() -> None:
    for need in (False, True):
        m = model(wins_need_live_session=need, win_bet="none")
        m.issue_token("Lx", "p1", 0)
        m.record_session("Lx", "sx", NOW)
        out = m.outcomes(win("w1", sess="sx"), NOW + 1)
        assert out.accepts and out.accepts[0].balance == 1050
        assert (ErrorCode.SESSION_EXPIRED in out.codes) is need
        if need:
            assert out.choice_of(ErrorCode.SESSION_EXPIRED).startswith("dialect-wins-need-live-session-true")


# -- rollback amount, operator sessions --------------------------------------------------------

def test_a_rollbacks_amount_takes_no_part_in_the_replay() -> None:
    m = model(rollback_amount=True)
    ok(m, bet("b1"))
    assert ok(m, rollback("rb", "b1", amount=100)) == 1000
    replay = m.outcomes(rollback("rb", "b1", amount=7), NOW)
    assert replay.primary[0] == "ok" and not replay.accepts[0].effects


def test_an_operator_session_lives_its_ttl() -> None:
    m = WalletModel(semantics=Semantics(sessions="operator"))
    m.create_player("p1", "EUR", 10)
    m.record_session_direct("tok", "p1", 0, NOW)
    assert m.outcomes(bet("t1", sess="tok", amount=1), NOW + 1).primary == ("rejected", ErrorCode.SESSION_EXPIRED)
    m.record_session_direct("tok2", "p1", 60, NOW)
    assert m.outcomes(bet("t1", sess="tok2", amount=1), NOW + 1).primary == ("ok", 9, None)


# -- the checker's vocabulary -------------------------------------------------------------------

def test_rules_the_wire_cannot_express_are_filed_under_the_dialects() -> None:
    sem = Semantics(player="session", currency="account", rounds=False, win_bet="named", rollback_by="tx",
                    sessions="operator")
    renamed = replaced_rules(sem)
    assert renamed["money-currency"] == "dialect-currency-account"
    assert renamed["operations-round-closed"] == "dialect-rounds-false"
    assert renamed["operations-regular-win-needs-bet"] == "dialect-win-bet-named"
    assert renamed["operations-unknown-player"] == "dialect-player-session"
    assert renamed["operations-authenticate"] == "dialect-sessions-operator"
    assert set(renamed.values()) <= set(RULES)
    assert replaced_rules(CANONICAL) == {} and excluded_codes(CANONICAL) == {}
    assert excluded_codes(sem)[ErrorCode.CURRENCY_MISMATCH] == "dialect-currency-account"
    tally = RuleTally(renamed)
    tally["money-currency"] += 2
    tally["dialect-currency-account"] += 1
    assert dict(tally) == {"dialect-currency-account": 3}


# -- malformed variants through the dialect ----------------------------------------------------

def test_canonical_variants_are_todays_bodies_signed() -> None:
    call = dataclasses.replace(bet("t1", amount=150), amount=Money.of(150, "EUR"))
    d = CanonicalDialect("s3cret")
    req = d.encode_variant(call, NOW, "amount-string")
    body = call_to_json(call)
    body["amount"] = "150"
    assert req.body == orjson.dumps(body) == malformed_body(call, "amount-string")
    assert (req.method, req.path) == ("POST", "bet")
    signing.verify("s3cret", req.headers[signing.HEADER], req.body, NOW)
    assert d.encode_variant(call, NOW, "oversized").body.startswith(orjson.dumps(call_to_json(call)))
    assert len(d.encode_variant(call, NOW, "oversized").body) > 64 * 1024
    assert d.encode_variant(call, NOW, "not-json").body == b'{"tx_id": "t1", "amount": '
    try:
        d.encode_variant(WalletCall.balance("p1", "s1"), NOW, "missing-field")
    except DialectError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a balance call has no round_id to leave out")


# -- the checker, against a scripted wallet (no HTTP) -------------------------------------------

class _Scripted:
    """A connection whose wallet answers from a script: what a call gets is decided by the test."""

    def __init__(self, semantics: Semantics, answer: Callable[[WalletCall], Outcome]) -> None:
        self.dialect = SimpleNamespace(name="scripted", semantics=semantics)
        self.answer = answer
        self.sessions_of: dict[str, str] = {}

    def create_player(self, player_id: str, currency: str, balance: int) -> None:
        pass

    def launch_token(self, player_id: str, ttl_s: int) -> str:
        return f"session-of-{player_id}"

    def send(self, call: WalletCall, sign: str = "ok") -> Sent:
        out = self.answer(call)
        return Sent(out, 200 if isinstance(out, Ok) else 400, b"{}", b"{}")


def _checker(semantics: Semantics, answer: Callable[[WalletCall], Outcome], players: int = 1) -> Checker:
    ck = Checker(_Scripted(semantics, answer), "x-")  # type: ignore[arg-type]
    for n in range(1, players + 1):
        ck.add_player(f"P{n}", "EUR", 1000)
        assert ck.login(f"P{n}", f"S{n}", 3600)  # the operator's session: no authenticate
    return ck


def _bet(tx: str, player: str = "P1", amount: int = 100) -> dict[str, object]:
    return {"op": "bet", "tx": tx, "player": player, "session": f"S{player[1]}", "round": "r1", "amount": amount,
            "currency": "EUR"}


def test_an_unmapped_code_is_some_refusal() -> None:
    unmapped = Rejected(ErrorCode.UNMAPPED, "unmapped wire code 'E42'")
    ck = _checker(Semantics(sessions="operator", zero_bet=False), lambda call: unmapped)
    ck.call(_bet("t0", amount=0))  # a refusal is due: any refusal passes
    assert any("unmapped wire code 'E42'" in note and note.startswith("errors-codes:") for note in ck.choices)
    try:
        ck.call(_bet("t1"))  # an acceptance is due
    except Violation as v:
        assert v.kind == "refused_valid_call" and "E42" in v.message
    else:  # pragma: no cover
        raise AssertionError("a valid bet refused with an unmapped code must be a finding")


def test_another_players_tx_id_answered_as_a_replay_breaks_the_dialects_rule() -> None:
    balances = {"x-P1": 1000, "x-P2": 1000}

    def wallet(call: WalletCall) -> Outcome:  # tx ids kept per wallet: the second player's t1 is a "replay"
        assert call.player_id is not None and call.amount is not None
        if call.tx_id == "x-t1" and call.player_id == "x-P2":
            return Ok(Money.of(balances["x-P2"], "EUR"), wallet_tx_id="w1")
        balances[call.player_id] -= call.amount.minor
        return Ok(Money.of(balances[call.player_id], "EUR"), wallet_tx_id="w1")

    ck = _checker(Semantics(sessions="operator", tx_scope="player"), wallet, players=2)
    ck.call(_bet("t1"))
    try:
        ck.call(_bet("t1", player="P2"))
    except Violation as v:
        assert v.rule.id == "dialect-tx-scope-player" and v.rule.source == "docs/dialects.md"
    else:  # pragma: no cover
        raise AssertionError("a per-player tx_id answered as another player's replay must be a finding")


# -- curl reproductions: each request made by the dialect's own encoder ---------------------------

def test_a_call_survives_the_curl_scripts_json() -> None:
    w = dataclasses.replace(win("w1", bet_tx="b1", closed=True), session_ref="ref-1", currency_hint="EUR")
    rb = rollback("r1", "b1", amount=100)
    for call in (w, rb, WalletCall.balance("p1", "s1"), WalletCall.authenticate("L", "g1")):
        back = call_from_json(orjson.loads(orjson.dumps(call_json(call))))
        assert back == call and back.session_ref == call.session_ref


def test_the_script_requests_are_the_dialects() -> None:
    d, wrong = CanonicalDialect("s3cret"), CanonicalDialect("s3cret-not-the-secret")
    call = bet("t1")
    assert request.request(d, wrong, call, now=NOW) == d.encode_call(call, NOW)
    assert signing.HEADER not in request.request(d, wrong, call, "unsigned", now=NOW).headers
    assert request.request(d, wrong, call, variant="amount-float", now=NOW).body == malformed_body(call, "amount-float")
    line = request.shell(d.encode_call(call, NOW))
    assert line.startswith("METHOD=POST; RPATH=bet; HDR=(-H ") and "BODY='{" in line


def test_an_operator_dialects_script_takes_its_sessions_from_the_admin_api(tmp_path: Path) -> None:
    steps = [{"kind": "player", "alias": "P1", "currency": "EUR", "balance": 10, "suffix": ""},
             {"kind": "login", "player": "P1", "session": "S1", "ttl": 3600},
             {"kind": "call", "call": _bet("t1")},
             {"kind": "raw", "mutation": "amount-string", "call": _bet("t2")}]
    f = Failure(RULES["operations-effect"], "demo", 1, [], steps)
    target = {"wallet": "http://127.0.0.1:1/a", "dialect": "canonical", "players": "admin API"}
    text = curl_script(f, target, "s3cret", Semantics(sessions="operator"), "http://127.0.0.1:1")
    assert 'S1=$(admin POST /admin/tokens "$body" | field token)' in text and '"op":"authenticate"' not in text
    assert 'call "$body" ok amount-string' in text and "s3cret" in text
    script = tmp_path / "x.sh"
    script.write_text(text)
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    assert '"op":"authenticate"' in curl_script(f, target, "s3cret")  # canonical sessions: made by authenticate


def test_the_script_carries_the_checks_admin_token_and_finds_its_dialect_file_from_anywhere() -> None:
    steps = [{"kind": "player", "alias": "P1", "currency": "EUR", "balance": 10, "suffix": ""}]
    f = Failure(RULES["operations-effect"], "demo", 1, [], steps)
    target = {"wallet": "http://127.0.0.1:1/a", "dialect": "dialects/session-wallet.toml", "players": "admin API"}
    text = curl_script(f, target, "s3cret", admin_url="http://127.0.0.1:1", admin_token="tok-42")
    assert 'ADMIN_TOKEN="${CROUPIER_ADMIN_TOKEN:-tok-42}"' in text
    absolute = str(Path("dialects/session-wallet.toml").resolve())
    assert f'CROUPIER_DIALECT="${{CROUPIER_DIALECT:-{absolute}}}"' in text
    assert "croupier-dev-admin" in curl_script(f, {**target, "dialect": "canonical"}, "s3cret")


def test_declared_semantics_read_as_the_toml_that_declares_them() -> None:
    sem = Semantics(player="session", rounds=False, win_bet="none")
    assert sem.declared() == ['player = "session"', "rounds = false", 'win_bet = "none"']
    assert CANONICAL.declared() == []

"""``croupier run`` and ``load`` speak a dialect's semantics: the rounds send only what its wire can
express and mean, the ledger expects only what its semantics imply (docs/dialects.md), seats are
opened however the operator makes sessions, and test accounts play their own currencies.

Fast: rounds are driven by a scripted wallet, the ledger is told calls and answers directly."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Generator
from pathlib import Path

import pytest

from simulator.judge.ledger import Anomaly, Ledger
from simulator.play.faults import Due, FaultPlan, FaultRates, Invalid
from simulator.play.rounds import (
    LIVE_SESSION,
    Batch,
    Launch,
    Parallel,
    Pay,
    Plan,
    RetryPolicy,
    RoundContext,
    RoundOutcome,
    Seat,
    SeatRefused,
    Send,
    Sleep,
    Stake,
    TxIds,
    expressible,
    live_round,
    open_seat,
    play_round,
    player_ids,
    repay,
)
from simulator.play.scenario import Scenario
from simulator.protocol.calls import Ok, Op, Outcome, Rejected, Unknown, WalletCall, WinReason
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects.semantics import Semantics
from simulator.protocol.findings import RULES
from simulator.protocol.money import Money, currency
from simulator.run.runner import RunError, Runner, RunOptions, read_accounts
from simulator.run.runner import TestAccount as Account

EUR = currency("EUR")
SHAPE_A = Semantics(player="session", currency="account", rounds=False, win_bet="named", rollback_by="tx",
                    zero_bet=False, rollback_amount=True, sessions="operator")
"""The session wallet of the plan (docs/dialects.md): no player, currency or round on the wire."""
SHAPE_B = Semantics(tx_scope="player")
LIVE = Semantics(wins_need_live_session=True)
NO_RETRY = RetryPolicy(max_attempts=1, base_s=0, cap_s=0)


# -- a scripted wallet --------------------------------------------------------------------------
class Wallet:
    """Answers every call Ok with a balance it keeps (or what ``script`` says for a call)."""

    def __init__(self, balance: int = 10_000, script: Callable[[WalletCall], Outcome | None] | None = None) -> None:
        self.balance = balance
        self.script = script
        self.sent: list[Send] = []
        self.bets: dict[str, int] = {}

    def answer(self, call: WalletCall) -> Outcome:
        scripted = self.script(call) if self.script else None
        if scripted is not None:
            return scripted
        if call.op is Op.BET and call.amount is not None:
            self.balance -= call.amount.minor
            self.bets[call.tx_id or ""] = call.amount.minor
        elif call.op is Op.WIN and call.amount is not None:
            self.balance += call.amount.minor
        elif call.op is Op.ROLLBACK:
            self.balance += self.bets.pop(call.ref_tx_id or "", 0)
        return Ok(Money(self.balance, EUR), f"w-{call.tx_id}")

    def reply_to(self, send: Send) -> Outcome:
        """The answer to one request (a subclass may also tell it to a ledger)."""
        return self.answer(send.call)

    def drive(self, gen: Generator[object, object, object]) -> object:
        reply: object = None
        while True:
            try:
                step = gen.send(reply)
            except StopIteration as stop:
                return stop.value
            if isinstance(step, Send):
                self.sent.append(step)
                reply = self.reply_to(step)
            elif isinstance(step, Batch):
                reply = tuple(self.answer(c) for c in step.calls)
            elif isinstance(step, Sleep):
                reply = None
            elif isinstance(step, Parallel):
                reply = [self.drive(g) for g in step.rounds]
            else:  # pragma: no cover
                raise TypeError(step)

    def calls(self, op: Op) -> list[WalletCall]:
        return [s.call for s in self.sent if s.call.op is op]


def ctx_for(sem: Semantics, faults: FaultPlan | None = None, *, signed: bool = True, seed: int = 1,
            seat: Seat | None = None) -> RoundContext:
    seat = seat or Seat("p1", "sess-1", EUR, 10_000)
    return RoundContext(seat, "slot-1", random.Random(seed), TxIds("p1"), faults or FaultPlan(), NO_RETRY,
                        semantics=sem, signed=signed)


# -- rounds -------------------------------------------------------------------------------------
@pytest.mark.parametrize("sem", [Semantics(), SHAPE_A, SHAPE_B, LIVE], ids=["canonical", "A", "B", "live"])
def test_every_win_names_the_rounds_first_accepted_bet(sem: Semantics) -> None:
    wallet = Wallet()
    plan = Plan((Stake(100), Stake(50)), (Pay(300), Pay(40, WinReason.JACKPOT)))
    result = wallet.drive(play_round(ctx_for(sem), plan))
    assert isinstance(result, RoundOutcome) and result.status == "settled"
    bets, wins = wallet.calls(Op.BET), wallet.calls(Op.WIN)
    assert len(bets) == 2 and len(wins) == 2
    assert all(w.bet_tx_id == bets[0].tx_id for w in wins)
    # Without rounds no win closes one; with them the last one does.
    assert [w.round_closed for w in wins] == ([False, True] if sem.rounds else [False, False])


@pytest.mark.parametrize("sem", [Semantics(), SHAPE_A], ids=["canonical", "A"])
def test_every_rollback_carries_the_amount_of_its_bet(sem: Semantics) -> None:
    def script(call: WalletCall) -> Outcome | None:
        if call.op is Op.BET and call.amount is not None and call.amount.minor == 70:
            return Unknown("timeout")  # the second bet: both are rolled back
        return None

    wallet = Wallet(script=script)
    wallet.drive(play_round(ctx_for(sem), Plan((Stake(120), Stake(70)), (Pay(10),))))
    rollbacks = wallet.calls(Op.ROLLBACK)
    bets = {b.tx_id: b for b in wallet.calls(Op.BET)}
    assert len(rollbacks) == 2
    for rb in rollbacks:
        assert rb.amount == bets[rb.ref_tx_id].amount
        assert rb.round_id == bets[rb.ref_tx_id].round_id


def test_without_rounds_a_lost_round_sends_no_zero_win() -> None:
    for sem, wins in ((Semantics(), 1), (SHAPE_A, 0)):
        wallet = Wallet()
        wallet.drive(play_round(ctx_for(sem), Plan((Stake(100),), ())))
        sent = wallet.calls(Op.WIN)
        assert len(sent) == wins
        assert all(w.amount is not None and w.amount.minor == 0 for w in sent)


def test_a_zero_stake_is_raised_to_the_smallest_bet_where_bets_are_above_zero() -> None:
    for sem, amount in ((Semantics(), 0), (SHAPE_A, 1)):
        wallet = Wallet()
        result = wallet.drive(play_round(ctx_for(sem), Plan((Stake(0),), (Pay(5),))))
        bet = wallet.calls(Op.BET)[0]
        assert bet.amount == Money(amount, EUR)
        assert isinstance(result, RoundOutcome) and result.staked == amount


def test_only_invalid_calls_the_wire_can_express() -> None:
    assert expressible(Semantics()) == tuple(Invalid)
    assert set(expressible(SHAPE_A)) == set(Invalid) - {Invalid.WRONG_CURRENCY, Invalid.CLOSED_ROUND}
    assert Invalid.BAD_SIGNATURE not in expressible(Semantics(), signed=False)
    assert set(expressible(SHAPE_B)) == set(Invalid)


@pytest.mark.parametrize("sem,signed", [(SHAPE_A, True), (Semantics(rounds=False, win_bet="none"), False)])
def test_invalid_calls_under_semantics_never_need_what_the_wire_lacks(sem: Semantics, signed: bool) -> None:
    faults = FaultPlan(FaultRates(invalid=1.0))
    purposes: set[str] = set()
    for seed in range(60):
        wallet = Wallet()
        wallet.drive(play_round(ctx_for(sem, faults, signed=signed, seed=seed), Plan((Stake(100),), (Pay(150),))))
        for send in wallet.sent:
            purposes.add(send.purpose)
            due = send.expect
            if isinstance(due, Due):
                assert ErrorCode.ROUND_CLOSED not in due.codes  # no round closes on this wire
            if not sem.carries_currency:
                assert send.call.amount is None or send.call.amount.currency == EUR
    assert ("invalid:currency" in purposes) is sem.carries_currency
    assert "invalid:closed_round" not in purposes
    assert ("invalid:signature" in purposes) is signed
    assert {"invalid:overdraft", "invalid:mismatched_replay", "invalid:rollback_of_win"} <= purposes


def test_a_forced_inexpressible_invalid_call_is_not_made() -> None:
    class Forced(FaultPlan):
        def invalid(self, rng: random.Random, kinds: object = None) -> Invalid | None:
            return Invalid.CLOSED_ROUND

    wallet = Wallet()
    result = wallet.drive(play_round(ctx_for(SHAPE_A, Forced()), Plan((Stake(100),), (Pay(150),))))
    assert isinstance(result, RoundOutcome) and result.invalid is None
    assert not [s for s in wallet.sent if s.purpose.startswith("invalid:")]


def test_live_table_wins_name_each_players_bet() -> None:
    wallet = Wallet()
    seats = [(ctx_for(SHAPE_B, seat=Seat(f"p{i}", f"s{i}", EUR, 10_000)), Plan((Stake(10 + i),), (Pay(30),)))
             for i in range(3)]
    wallet.drive(live_round("t", seats, "r-live"))
    bets = {b.player_id: b.tx_id for b in wallet.calls(Op.BET)}
    for win in wallet.calls(Op.WIN):
        assert win.bet_tx_id == bets[win.player_id]


def test_a_win_refused_for_an_ended_session_is_owed_and_sent_again_on_a_fresh_one() -> None:
    refused: set[str] = set()

    def script(call: WalletCall) -> Outcome | None:
        if call.op is Op.WIN and call.session_token == "old" and not refused:
            refused.add(call.tx_id or "")
            return Rejected(ErrorCode.SESSION_EXPIRED)
        return None

    for sem, owed in ((LIVE, 2), (Semantics(), 0)):
        refused.clear()
        wallet = Wallet(script=script)
        seat = Seat("p1", "old", EUR, 10_000)  # a players file's session: it may end at any time
        ctx = ctx_for(sem, seat=seat)
        result = wallet.drive(play_round(ctx, Plan((Stake(100),), (Pay(300), Pay(20, WinReason.BONUS)))))
        assert isinstance(result, RoundOutcome) and result.status == "refused"
        assert len(seat.owed) == owed
        if not owed:
            assert wallet.sent[1].rule is None  # PROTOCOL.md: a session not known to have ended
            continue
        assert result.refusal is ErrorCode.SESSION_EXPIRED
        assert wallet.sent[1].rule == LIVE_SESSION
        first = seat.owed[0]
        assert first.tx_id in refused
        seat.session_token = "fresh"
        wallet.sent.clear()
        assert wallet.drive(repay(ctx)) == 2
        again = [s.call for s in wallet.sent]
        assert again[0].tx_id == first.tx_id and all(c.session_token == "fresh" for c in again)
        assert again[0].bet_tx_id is not None and again[0].bet_tx_id == again[1].bet_tx_id
        assert not seat.owed


def test_player_scoped_tx_ids_are_shared_by_players() -> None:
    a, b = player_ids("run-p1", SHAPE_B, "run"), player_ids("run-p2", SHAPE_B, "run")
    assert a.tx() == b.tx() and a.round() != b.round()
    c, d = player_ids("run-p1", Semantics(), "run"), player_ids("run-p2", Semantics(), "run")
    assert c.tx() != d.tx()


# -- the ledger ---------------------------------------------------------------------------------
def exchange(ledger: Ledger, call: WalletCall, outcome: Outcome, expect: ErrorCode | Due | None = None,
             rule: str | None = None) -> None:
    token = ledger.begin(call, expect, rule=rule)
    ledger.end(token, call, outcome, expect=expect)


def bet(tx: str, player: str = "a", amount: int = 100, round_id: str = "r1") -> WalletCall:
    return WalletCall.bet(tx, player, f"s-{player}", "g", round_id, Money(amount, EUR))


def win(tx: str, bet_tx: str | None, player: str = "a", amount: int = 50, round_id: str = "r1") -> WalletCall:
    return dataclasses.replace(WalletCall.win(tx, player, f"s-{player}", "g", round_id, Money(amount, EUR)),
                               bet_tx_id=bet_tx)


def rollback(tx: str, ref: str, player: str = "a", amount: int = 100) -> WalletCall:
    return WalletCall(Op.ROLLBACK, player_id=player, session_token=f"s-{player}", game_id="g", tx_id=tx,
                      round_id="r1", amount=Money(amount, EUR), ref_tx_id=ref)


def ok(balance: int, wid: str) -> Ok:
    return Ok(Money(balance, EUR), wid)


def failing(ledger: Ledger) -> list[tuple[str, str]]:
    return [(str(f.kind), f.rule) for f in ledger.findings if f.kind is not Anomaly.WALLET_CHOICE]


def notes(ledger: Ledger) -> list[str]:
    return [f.rule for f in ledger.findings if f.kind is Anomaly.WALLET_CHOICE]


def opened(sem: Semantics, *players: str) -> Ledger:
    ledger = Ledger(semantics=sem)
    for p in players or ("a",):
        ledger.open(p, "EUR", 1000)
    return ledger


def test_tx_ids_per_player_two_players_one_id_each_judged_on_its_own() -> None:
    ledger = opened(SHAPE_B, "a", "b")
    exchange(ledger, bet("t1", "a"), ok(900, "w1"))
    exchange(ledger, bet("t1", "b"), ok(900, "w2"))
    exchange(ledger, win("t2", "t1", "a", 50), ok(950, "w3"))
    assert not ledger.findings
    for p in ("a", "b"):
        assert ledger.reconcile(p, ok(950 if p == "a" else 900, "")) and not ledger.findings


def test_tx_ids_per_player_a_wallet_keying_them_per_wallet_is_caught() -> None:
    ledger = opened(SHAPE_B, "a", "b")
    exchange(ledger, bet("t1", "a"), ok(900, "w1"))
    exchange(ledger, bet("t1", "b"), ok(1000, "w1"))  # b's bet taken for a's replay: no debit
    assert failing(ledger) == [("balance_mismatch", "dialect-tx-scope-player")]
    assert "another player" in ledger.findings[0].message
    quote = ledger.findings[0].to_json()["quote"]
    assert "unique per player" in quote


def test_tx_ids_per_player_caught_at_the_final_balance_too() -> None:
    ledger = opened(SHAPE_B, "a", "b")
    exchange(ledger, bet("t1", "a"), ok(900, "w1"))
    token_b = ledger.begin(bet("t1", "b"))
    token_other = ledger.begin(bet("t9", "b", 10))  # overlapping: the answer's balance is not judged
    ledger.end(token_b, bet("t1", "b"), ok(990, "w1"))
    ledger.end(token_other, bet("t9", "b", 10), ok(990, "w9"))
    assert not failing(ledger)
    assert not ledger.reconcile("b", ok(990, ""))
    assert failing(ledger) == [("balance_mismatch", "dialect-tx-scope-player")]


def test_a_named_bet_win_is_judged_by_the_bet_it_names() -> None:
    ledger = opened(SHAPE_A)
    exchange(ledger, bet("b1", round_id="r1"), ok(900, "w1"))
    exchange(ledger, win("x1", "b1", round_id="r-other"), Rejected(ErrorCode.ROUND_NOT_FOUND))
    assert failing(ledger) == [("refused_valid_call", "dialect-win-bet-named")]


def test_a_win_naming_a_rolled_back_bet_may_be_refused() -> None:
    ledger = opened(SHAPE_A)
    exchange(ledger, bet("b1"), ok(900, "w1"))
    exchange(ledger, rollback("rb1", "b1"), ok(1000, "w2"))
    exchange(ledger, win("x1", "b1"), Rejected(ErrorCode.ROUND_NOT_FOUND))
    assert not failing(ledger)
    assert notes(ledger) == ["dialect-win-bet-named"]


def test_wins_that_stand_alone_are_never_round_not_found() -> None:
    ledger = opened(Semantics(rounds=False, win_bet="none"))
    exchange(ledger, win("x1", None), Rejected(ErrorCode.ROUND_NOT_FOUND))
    assert failing(ledger) == [("refused_valid_call", "dialect-win-bet-none")]
    canonical = opened(Semantics())
    exchange(canonical, win("x1", None), Rejected(ErrorCode.ROUND_NOT_FOUND))
    assert not canonical.findings  # PROTOCOL.md: a regular win needs a bet in its round


def test_without_rounds_no_call_is_round_closed() -> None:
    ledger = opened(SHAPE_A)
    exchange(ledger, bet("b1"), Rejected(ErrorCode.ROUND_CLOSED))
    assert failing(ledger) == [("refused_valid_call", "dialect-rounds-false")]


def test_unmapped_codes_are_some_refusal() -> None:
    unmapped = Rejected(ErrorCode.UNMAPPED, "unmapped wire code 'E_WEIRD'")
    ledger = opened(SHAPE_A)
    due = Due.of(ErrorCode.DUPLICATE_MISMATCH, what="bet reusing an accepted tx_id")
    exchange(ledger, bet("b1"), ok(900, "w1"))
    exchange(ledger, bet("b1", amount=101), unmapped, expect=due)  # due to be refused: passes, noted
    exchange(ledger, bet("b2"), unmapped)  # a bet may meet a session, block or limit: noted
    assert not failing(ledger) and len(notes(ledger)) == 2
    exchange(ledger, win("x1", "b1"), unmapped)  # a win owed to the player: refused_valid_call
    assert failing(ledger) == [("refused_valid_call", "operations-effect")]
    assert "E_WEIRD" in ledger.findings[-1].message


def test_wins_needing_a_live_session_may_be_refused_on_an_ended_one() -> None:
    ledger = opened(LIVE)
    exchange(ledger, bet("b1"), ok(900, "w1"))
    w = win("x1", "b1")
    exchange(ledger, w, Rejected(ErrorCode.SESSION_EXPIRED), rule=LIVE_SESSION)
    assert not ledger.findings
    # Sent again on a fresh session: accepted, and judged as any credit.
    again = dataclasses.replace(w, session_token="fresh")
    exchange(ledger, again, ok(950, "w2"))
    assert not ledger.findings and ledger.reconcile("a", ok(950, ""))
    # On a session known to be live, the refusal is not allowed.
    exchange(ledger, win("x2", "b1"), Rejected(ErrorCode.SESSION_EXPIRED))
    assert failing(ledger) == [("refused_valid_call", "dialect-wins-need-live-session-true")]
    # PROTOCOL.md: money owed is paid on an expired session.
    canonical = opened(Semantics())
    exchange(canonical, bet("b1"), ok(900, "w1"))
    exchange(canonical, win("x1", "b1"), Rejected(ErrorCode.SESSION_EXPIRED), rule="sessions-money-owed-is-paid")
    assert failing(canonical) == [("refused_valid_call", "sessions-money-owed-is-paid")]


def test_a_refused_call_sent_again_is_in_doubt_until_answered() -> None:
    ledger = opened(LIVE)
    exchange(ledger, bet("b1"), ok(900, "w1"))
    w = win("x1", "b1")
    exchange(ledger, w, Rejected(ErrorCode.SESSION_EXPIRED), rule=LIVE_SESSION)
    token = ledger.begin(w)
    assert "x1" in ledger.books["a"].doubt
    ledger.end(token, w, Unknown("timeout"))
    assert [tx.call.tx_id for _, tx in ledger.in_doubt()] == ["x1"]


def test_an_authenticate_answer_without_a_balance_is_not_judged_by_it() -> None:
    ledger = opened(Semantics())
    call = WalletCall.authenticate("launch", "lobby")
    exchange(ledger, call, Ok(Money(0, EUR), None, "a", "s", missing=frozenset({"balance"})))
    assert not ledger.findings


def test_every_finding_names_a_known_rule() -> None:
    for test in (test_tx_ids_per_player_a_wallet_keying_them_per_wallet_is_caught,
                 test_unmapped_codes_are_some_refusal):
        test()
    assert {r for r in ("dialect-win-bet-named", "dialect-win-bet-none", "dialect-rounds-false",
                        "dialect-tx-scope-player", "dialect-wins-need-live-session-true")} <= set(RULES)


# -- seats --------------------------------------------------------------------------------------
def test_operator_sessions_send_no_authenticate() -> None:
    wallet = Wallet(balance=777)
    launch = Launch("p1", EUR, "tok-1", session_ref="ref-1")
    seat = wallet.drive(open_seat(launch, SHAPE_A, None, 1.0))
    assert isinstance(seat, Seat)
    assert (seat.session_token, seat.session_ref, seat.balance) == ("tok-1", "ref-1", 777)
    [read] = [s.call for s in wallet.sent]
    assert read.op is Op.BALANCE and read.currency_hint == "EUR" and read.session_token == "tok-1"
    # The file's session token wins over its token column; a known balance is not read.
    wallet.sent.clear()
    seat = wallet.drive(open_seat(Launch("p1", EUR, "tok-1", "sess-9", balance=50), SHAPE_A, 3600, 1.0))
    assert isinstance(seat, Seat) and seat.session_token == "sess-9" and seat.balance == 50
    assert not wallet.sent and not seat.maybe_expired()


def test_an_authenticate_answer_leaving_fields_out_takes_them_from_the_file() -> None:
    answer = Ok(Money(0, EUR), None, None, None, missing=frozenset({"player_id", "session_token", "balance"}))
    wallet = Wallet(balance=321, script=lambda c: answer if c.op is Op.AUTHENTICATE else None)
    seat = wallet.drive(open_seat(Launch("p1", EUR, "launch-1"), SHAPE_B, None, 1.0))
    assert isinstance(seat, Seat)
    assert (seat.player_id, seat.session_token, seat.balance) == ("p1", "launch-1", 321)
    auth, read = (s.call for s in wallet.sent)
    assert auth.op is Op.AUTHENTICATE and auth.currency_hint == "EUR" and read.op is Op.BALANCE
    # A players file's session token is the session when the answer carries none.
    wallet.sent.clear()
    seat = wallet.drive(open_seat(Launch("p1", EUR, "launch-1", "file-sess"), SHAPE_B, None, 1.0))
    assert isinstance(seat, Seat) and seat.session_token == "file-sess"


def test_an_authenticate_answer_for_another_player_seats_nobody() -> None:
    wallet = Wallet(script=lambda c: Ok(Money(5, EUR), None, "other", "s") if c.op is Op.AUTHENTICATE else None)
    got = wallet.drive(open_seat(Launch("p1", EUR, "launch-1"), Semantics(), None, 1.0))
    assert isinstance(got, SeatRefused) and got.step == "other-player"
    refused = Wallet(script=lambda c: Rejected(ErrorCode.INVALID_TOKEN))
    got = refused.drive(open_seat(Launch("p1", EUR, "tok"), SHAPE_A, None, 1.0))
    assert isinstance(got, SeatRefused) and got.step == "balance"


def test_read_accounts_with_session_columns_and_an_excel_bom(tmp_path: Path) -> None:
    path = tmp_path / "players.csv"
    path.write_bytes("\ufeffplayer_id, token ,currency,session_token,session_ref\r\n"
                     "p1,t1,EUR,s1,ref1\r\np2,t2,JPY,,\r\n".encode())
    a, b = read_accounts(str(path))
    assert a == Account("p1", "t1", "EUR", "s1", "ref1") and a.session == "s1"
    assert b == Account("p2", "t2", "JPY") and b.session == "t2"
    plain = tmp_path / "plain.csv"
    plain.write_text("player_id,token,currency\np3,t3,BTC\n", encoding="utf-8")
    assert read_accounts(str(plain)) == [Account("p3", "t3", "BTC")]
    bad = tmp_path / "bad.csv"
    bad.write_text("player,token,currency\np3,t3,BTC\n", encoding="utf-8")
    with pytest.raises(RunError, match="needs columns"):
        read_accounts(str(bad))


def _runner(accounts: list[Account], dialect: str = "canonical") -> Runner:
    scenario = Scenario("s", currencies=("EUR",), players=1)
    return Runner(RunOptions(scenario=scenario, wallet_url="http://127.0.0.1:9/wallet", secret="k",
                             dialect=dialect, accounts=accounts))


def test_players_mode_plays_the_accounts_currencies_whatever_the_scenario_lists() -> None:
    accounts = [Account("a", "t", "JPY"), Account("b", "t", "BTC"), Account("c", "t", "EUR")]
    profiles = _runner(accounts)._profiles()
    assert [(i, p.currency) for i, p in profiles] == [(0, "JPY"), (1, "BTC"), (2, "EUR")]
    # A wire that cannot carry a satoshi leaves the BTC account out, and says so.
    runner = _runner(accounts, "form-md5")
    assert [p.currency for _, p in runner._profiles()] == ["JPY", "EUR"]
    assert any("BTC" in s for s in runner.skipped)
    with pytest.raises(RunError, match="carries none"):
        _runner([Account("b", "t", "BTC")], "form-md5")._profiles()


def test_an_account_in_another_currency_seats_nobody() -> None:
    yen = Ok(Money(5, currency("JPY")), None, "p1", "s")
    wallet = Wallet(script=lambda c: yen if c.op is Op.AUTHENTICATE else None)
    got = wallet.drive(open_seat(Launch("p1", EUR, "launch-1"), Semantics(), None, 1.0))
    assert isinstance(got, SeatRefused) and got.step == "currency"


def test_a_win_refused_after_its_bet_was_taken_for_another_players_names_the_tx_scope() -> None:
    ledger = opened(SHAPE_B, "a", "b")
    exchange(ledger, bet("t1", "a"), ok(900, "w1"))
    exchange(ledger, bet("t1", "b"), ok(1000, "w1"))
    exchange(ledger, win("t2", "t1", "b"), Rejected(ErrorCode.ROUND_NOT_FOUND))
    assert failing(ledger) == [("balance_mismatch", "dialect-tx-scope-player"),
                               ("refused_valid_call", "dialect-tx-scope-player")]


def test_a_refused_seating_balance_read_is_a_setup_error_not_a_finding() -> None:
    ledger = Ledger(semantics=SHAPE_A)
    ledger.book("a").currency = "EUR"  # a players file's account: its balance is read to seat it
    exchange(ledger, WalletCall(Op.BALANCE, player_id="a", session_token="bad"), Rejected(ErrorCode.INVALID_TOKEN))
    assert not ledger.findings
    ledger.open("a", "EUR", 100)
    exchange(ledger, WalletCall(Op.BALANCE, player_id="a", session_token="s"), Rejected(ErrorCode.INVALID_TOKEN))
    assert failing(ledger) == [("refused_valid_call", "sessions-token-of-player")]


class Judged(Wallet):
    """The scripted wallet with every exchange told to a ledger, as the drivers do."""

    def __init__(self, ledger: Ledger, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.ledger = ledger

    def reply_to(self, send: Send) -> Outcome:
        token = self.ledger.begin(send.call, send.expect, rule=send.rule)
        outcome = self.answer(send.call)
        self.ledger.end(token, send.call, outcome, expect=send.expect)
        return outcome


def test_owed_wins_end_to_end_pass_the_ledger_where_wins_need_a_live_session() -> None:
    def script(call: WalletCall) -> Outcome | None:
        if call.op in (Op.WIN, Op.ROLLBACK) and call.session_token == "old":
            return Rejected(ErrorCode.SESSION_EXPIRED)
        return None

    ledger = Ledger(semantics=LIVE)
    ledger.open("p1", "EUR", 10_000)
    wallet = Judged(ledger, balance=10_000, script=script)
    seat = Seat("p1", "old", EUR, 10_000)
    ctx = ctx_for(LIVE, seat=seat)
    wallet.drive(play_round(ctx, Plan((Stake(100),), (Pay(300), Pay(20, WinReason.BONUS)))))
    assert len(seat.owed) == 2 and not ledger.findings
    seat.session_token = "fresh"  # relaunched
    assert wallet.drive(repay(ctx)) == 2
    assert not ledger.findings
    assert ledger.reconcile("p1", ok(wallet.balance, "")) and wallet.balance == 10_220
    # Where PROTOCOL.md's rule holds (money owed is paid on an expired session) the same wallet is caught.
    strict = Ledger()
    strict.open("p1", "EUR", 10_000)
    other = Judged(strict, balance=10_000, script=script)
    expired = Seat("p1", "old", EUR, 10_000, live_until=0.0, expired_after=0.0)
    other.drive(play_round(ctx_for(Semantics(), seat=expired), Plan((Stake(100),), (Pay(300),))))
    assert failing(strict) == [("refused_valid_call", "sessions-money-owed-is-paid")]


def test_the_coverage_table_has_a_row_for_each_of_the_dialects_semantics() -> None:
    ledger = opened(SHAPE_A)
    exchange(ledger, bet("b1"), ok(900, "w1"))
    exchange(ledger, win("x1", "b1"), ok(950, "w2"))
    cov = ledger.coverage_json()
    assert {rule for rule, _ in SHAPE_A.statements()} <= set(cov)
    assert cov["dialect-win-bet-named"]["calls"] == 1 and cov["dialect-rounds-false"]["calls"] == 2
    assert not any(r.startswith("dialect-") for r in opened(Semantics()).coverage_json())


def test_other_findings_on_shared_tx_ids_keep_their_own_rule() -> None:
    ledger = opened(SHAPE_B, "a", "b")
    exchange(ledger, bet("t1", "a"), ok(900, "w1"))
    exchange(ledger, bet("t1", "b"), ok(880, "w2"))  # its own transaction, debited wrongly: not the tx scope
    assert failing(ledger) == [("balance_mismatch", "operations-effect")]


def test_the_coverage_table_says_which_protocol_rules_the_wire_cannot_carry() -> None:
    """A run through a wire without currency, rounds or authenticate does not list PROTOCOL.md's rules about
    them as 'not exercised' (a gap to close) but as not on this wire, naming the dialect's rule instead."""
    from simulator.report import model

    ledger = Ledger(semantics=SHAPE_A)
    rows = {r["rule"]: r for r in model.coverage_rows(ledger.coverage_json())}
    for rule, instead in (("money-currency", "dialect-currency-account"),
                          ("operations-round-closed", "dialect-rounds-false"),
                          ("operations-authenticate", "dialect-sessions-operator")):
        assert rows[rule]["result"] == "not on this wire" and rows[rule]["replaced_by"] == instead
        assert model.describe_result(rows[rule]) == f"not on this wire (see {instead})"
    merged = model.merge_coverage([model.coverage_raw(rows.values())] * 2)
    assert merged["money-currency"]["replaced_by"] == "dialect-currency-account"
    canonical = {r["rule"]: r for r in model.coverage_rows(Ledger().coverage_json())}
    assert canonical["money-currency"]["result"] == "not exercised" and "replaced_by" not in canonical["money-currency"]

"""Several actions in one request: the ``actions-hmac`` ``play`` with a list of bets and wins.

Pure side: encode then decode gives the calls (and their outcomes) back, in order, for any
bets-then-wins list; calls that cannot share one request are refused.  Wallet side, over
HTTP against the reference wallet: a bet+win batch is applied once, its exact replay zero more
times with the original ids; a batch whose bet fails for funds does not apply its win; a
mismatched replay of one action stops the batch there; bad signatures and bad bodies change
nothing.  Every balance is read back from the admin API.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.protocol import dialects
from simulator.protocol.calls import Ok, Op, Outcome, Rejected, Unknown, WalletCall, WinReason
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects import DialectError, HttpRequest, HttpResponse
from simulator.protocol.dialects.builtin import ACTIONS_HMAC
from simulator.protocol.dialects.declarative import MAX_BATCH, SpecError, load_spec
from simulator.protocol.money import INT64_MAX, Money, currency
from tests.support import SECRET, Served, make_store, serve_wallet

NOW = 1_700_000_000.25
D = dialects.get("actions-hmac", SECRET)
B = dialects.batching(D)
assert B is not None


def test_only_actions_hmac_batches() -> None:
    for name in dialects.names():
        assert (dialects.batching(dialects.get(name, SECRET)) is not None) == (name == "actions-hmac"), name


# -- 1. pure round trips -------------------------------------------------------------------------

ids = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20)


@st.composite
def batches(draw: st.DrawFn) -> list[WalletCall]:
    """Bets then wins of one round, two to six actions, distinct ids; only the last may close."""
    cur = currency(draw(st.sampled_from(["EUR", "JPY", "BTC", "KWD", "USDT"])))
    player, session, game, rnd = draw(ids), draw(ids), draw(ids), draw(ids)
    n_bets = draw(st.integers(0, 3))
    n_wins = draw(st.integers(max(0, 2 - n_bets), 3))
    tx = draw(st.lists(ids, min_size=n_bets + n_wins, max_size=n_bets + n_wins, unique=True))
    amount = st.integers(0, INT64_MAX).map(lambda m: Money(m, cur))
    calls = [WalletCall.bet(tx[i], player, session, game, rnd, draw(amount)) for i in range(n_bets)]
    for j in range(n_wins):
        last = j == n_wins - 1
        calls.append(WalletCall.win(tx[n_bets + j], player, session, game, rnd, draw(amount),
                                    draw(st.sampled_from(list(WinReason))), round_closed=last and draw(st.booleans())))
    return calls


@given(batches())
def test_a_batch_round_trips(calls: list[WalletCall]) -> None:
    req = B.encode_batch(calls, NOW)
    assert B.decode_batch(req, NOW) == calls
    body = json.loads(req.body)
    assert [a["action_id"] for a in body["actions"]] == [c.tx_id for c in calls]
    assert body["finished"] is bool(calls[-1].round_closed)
    # The one-call decoder refuses it (it would lose every action but one).
    refused = D.decode_request(req, NOW)
    assert isinstance(refused, Rejected) and refused.code is ErrorCode.BAD_REQUEST


@given(batches(), st.integers(0, 10**15), st.data())
def test_a_batch_answer_round_trips(calls: list[WalletCall], start: int, data: st.DataObject) -> None:
    cur = calls[0].amount.currency if calls[0].amount else currency("EUR")
    outcomes: list[Outcome] = []
    balance = start + sum(c.amount.minor for c in calls if c.op is Op.BET and c.amount)
    for i, c in enumerate(calls):
        assert c.amount is not None
        balance += c.amount.minor if c.op is Op.WIN else -c.amount.minor
        outcomes.append(Ok(Money(balance, cur), f"w{i}"))
    if any(o.balance.minor > INT64_MAX for o in outcomes if isinstance(o, Ok)):
        return  # a balance no 64-bit wire carries (the wallet answers "unknown" then)
    assert B.decode_batch_response(calls, B.encode_batch_response(calls, outcomes)) == outcomes
    # Refused at action j: that one is rejected; the others' results are not on the wire.
    j = data.draw(st.integers(0, len(calls) - 1))
    code = data.draw(st.sampled_from([ErrorCode.INSUFFICIENT_FUNDS, ErrorCode.DUPLICATE_MISMATCH,
                                      ErrorCode.ROUND_CLOSED]))
    resp = B.encode_batch_response(calls, [*outcomes[:j], Rejected(code, "no")])
    got = B.decode_batch_response(calls, resp)
    assert got[j] == Rejected(code, "no")
    assert all(isinstance(o, Unknown) for i, o in enumerate(got) if i != j)
    assert all(isinstance(o, Unknown) for o in B.decode_batch_response(
        calls, B.encode_batch_response(calls, [*outcomes[:j], Unknown("store failure")])))


def _bet(tx: str, amount: int, rnd: str = "r1", player: str = "p1") -> WalletCall:
    return WalletCall.bet(tx, player, "s1", "g1", rnd, Money(amount, currency("EUR")))


def _win(tx: str, amount: int, rnd: str = "r1", closed: bool = True) -> WalletCall:
    return WalletCall.win(tx, "p1", "s1", "g1", rnd, Money(amount, currency("EUR")), round_closed=closed)


def test_calls_that_cannot_share_a_request_are_refused() -> None:
    rb = WalletCall.rollback("t9", "t1", "p1", "s1", "g1", "r1")
    for calls in ([_bet("t1", 1), _win("t2", 1, rnd="r2")], [_bet("t1", 1), _bet("t2", 1, player="p2")],
                  [_win("t1", 1, closed=True), _win("t2", 1)], [_bet("t1", 1), rb], []):
        with pytest.raises(DialectError):
            B.encode_batch(calls, NOW)


def test_an_answer_that_does_not_list_each_action_is_unknown() -> None:
    calls = [_bet("t1", 100), _win("t2", 250)]
    for body in (b'{"balance":5,"currency":"EUR","transactions":[{"action_id":"t1","tx_id":"w1"}]}',
                 (b'{"balance":5,"currency":"EUR","transactions":[{"action_id":"t2","tx_id":"w1"},'
                  b'{"action_id":"t1","tx_id":"w2"}]}')):
        got = B.decode_batch_response(calls, HttpResponse(200, {}, body))
        assert any(isinstance(o, Unknown) for o in got), got


def test_the_batch_table_is_validated() -> None:
    spec = load_spec(ACTIONS_HMAC)
    assert spec.batch_list == "actions" and spec.batch_answers == "transactions"
    assert [o.op for o in spec.batchable()] == [Op.BET, Op.WIN]
    bad = {**ACTIONS_HMAC, "batch": {"list": "steps", "answers": "transactions.0", "extra": 1}}
    with pytest.raises(SpecError) as exc:
        load_spec(bad)
    text = "\n".join(exc.value.problems)
    assert "batch.extra" in text and "batch.answers" in text
    with pytest.raises(SpecError, match="needs a bet and a win"):
        load_spec({**ACTIONS_HMAC, "batch": {"list": "steps", "answers": "transactions"}})
    with pytest.raises(SpecError, match="wallet_tx_id under results.0."):
        load_spec({**ACTIONS_HMAC, "batch": {"list": "actions", "answers": "results"}})


def test_dialect_sample_shows_a_batch(capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.commands.cli import main

    assert main(["dialect", "sample", "actions-hmac"]) == 0
    out = capsys.readouterr().out
    assert "batch" in out and '"actions":[{"action":"bet"' in out and '{"action":"win"' in out
    assert main(["dialect", "sample", "form-md5"]) == 0
    assert "batch" not in capsys.readouterr().out


# -- 2. the reference wallet over HTTP ----------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Served]:
    async with serve_wallet(make_store(request.param, tmp_path)) as s:
        yield s


async def _post(s: Served, req: HttpRequest) -> tuple[int, dict[str, Any], HttpResponse]:
    async with s.session.post(f"{s.base}/wallet/actions-hmac/{req.path}", data=req.body, headers=req.headers) as r:
        body = await r.read()
        return r.status, json.loads(body), HttpResponse(r.status, dict(r.headers), body)


async def _player(s: Served, pid: str, balance: int) -> str:
    await s.admin.create_player(pid, "EUR", balance)
    authed = await s.wallet.send(WalletCall.authenticate(await s.admin.token(pid), "g1"))
    assert isinstance(authed, Ok) and authed.session_token
    return authed.session_token


async def _state(s: Served, pid: str) -> tuple[int, int]:
    """The balance and the number of recorded bets, wins and rollbacks, from the admin API."""
    rows = await s.admin.transactions(pid)
    return (await s.admin.player(pid))["balance"], sum(r.get("op") in ("bet", "win", "rollback") for r in rows)


def _calls(pid: str, sess: str, rnd: str, *spec: tuple[str, str, int]) -> list[WalletCall]:
    eur = currency("EUR")
    out = []
    for i, (op, tx, amount) in enumerate(spec):
        if op == "bet":
            out.append(WalletCall.bet(tx, pid, sess, "g1", rnd, Money(amount, eur)))
        else:
            out.append(WalletCall.win(tx, pid, sess, "g1", rnd, Money(amount, eur), round_closed=i == len(spec) - 1))
    return out


async def test_bet_and_win_in_one_play_applied_once_and_replayed(served: Served) -> None:
    sess = await _player(served, "bob", 1000)
    calls = _calls("bob", sess, "r1", ("bet", "a1", 100), ("win", "a2", 250))
    req = B.encode_batch(calls, NOW)
    status, data, resp = await _post(served, req)
    assert status == 200 and data["balance"] == 1150 and data["currency"] == "EUR"
    assert [t["action_id"] for t in data["transactions"]] == ["a1", "a2"]
    wallet_ids = [t["tx_id"] for t in data["transactions"]]
    assert len(set(wallet_ids)) == 2
    assert await _state(served, "bob") == (1150, 2)
    assert B.decode_batch_response(calls, resp) == [Ok(Money(900, currency("EUR")), wallet_ids[0]),
                                                    Ok(Money(1150, currency("EUR")), wallet_ids[1])]
    # The exact replay: nothing moves, the original ids come back with the current balance.
    for _ in range(2):
        status, again, _ = await _post(served, req)
        assert status == 200 and again["transactions"] == data["transactions"] and again["balance"] == 1150
        assert await _state(served, "bob") == (1150, 2)
    # Each action is idempotent by its own id: the bet alone, replayed as a one-action play, too.
    status, one, _ = await _post(served, D.encode_call(calls[0], NOW))
    assert status == 200 and one["transactions"] == data["transactions"][:1]
    assert await _state(served, "bob") == (1150, 2)
    # The round is closed: a new batch on it is refused at its first action, nothing applied.
    status, closed, _ = await _post(served, B.encode_batch(_calls("bob", sess, "r1", ("bet", "a3", 1),
                                                                  ("win", "a4", 1)), NOW))
    assert status == 409 and closed["code"] == 411 and closed["action_id"] == "a3"
    assert await _state(served, "bob") == (1150, 2)


async def test_a_bet_refused_for_funds_does_not_apply_its_win(served: Served) -> None:
    sess = await _player(served, "ann", 1000)
    calls = _calls("ann", sess, "r1", ("bet", "b1", 5000), ("win", "b2", 10000))
    req = B.encode_batch(calls, NOW)
    status, data, resp = await _post(served, req)
    assert status == 412 and data["code"] == 100 and data["action_id"] == "b1"
    assert await _state(served, "ann") == (1000, 0)
    got = B.decode_batch_response(calls, resp)
    assert isinstance(got[0], Rejected) and got[0].code is ErrorCode.INSUFFICIENT_FUNDS
    assert isinstance(got[1], Unknown)
    # A refused action is not recorded (rule 3): after a deposit the same batch is judged again.
    await served.admin.deposit("ann", 4000)
    status, data, _ = await _post(served, req)
    assert status == 200 and data["balance"] == 10000
    assert await _state(served, "ann") == (10000, 2)


async def test_a_mismatched_replay_stops_the_batch_where_it_is(served: Served) -> None:
    sess = await _player(served, "cat", 1000)
    status, _, _ = await _post(served, B.encode_batch(_calls("cat", sess, "r1", ("bet", "c1", 100),
                                                             ("win", "c2", 0)), NOW))
    assert status == 200 and await _state(served, "cat") == (900, 2)
    # The same bet id with another amount: DUPLICATE_MISMATCH, and the win after it is not tried.
    status, data, _ = await _post(served, B.encode_batch(_calls("cat", sess, "r2", ("bet", "c1", 101),
                                                               ("win", "c3", 500)), NOW))
    assert status == 409 and data["code"] == 409 and data["action_id"] == "c1"
    assert await _state(served, "cat") == (900, 2)
    # A fresh bet, then a win replaying c2's id with another amount: the bet stays applied
    # (each action is its own transaction), the win is refused and names itself.
    calls = _calls("cat", sess, "r3", ("bet", "c4", 300), ("win", "c2", 700))
    status, data, resp = await _post(served, B.encode_batch(calls, NOW))
    assert status == 409 and data["code"] == 409 and data["action_id"] == "c2"
    assert await _state(served, "cat") == (600, 3)
    got = B.decode_batch_response(calls, resp)
    assert isinstance(got[0], Unknown) and got[1] == Rejected(ErrorCode.DUPLICATE_MISMATCH, data["message"])
    # ... so the provider rolls the bet back, as after any bet it has no answer for.
    rb = WalletCall.rollback("c5", "c4", "cat", sess, "g1", "r3")
    status, _, _ = await _post(served, D.encode_call(rb, NOW))
    assert status == 200 and await _state(served, "cat") == (900, 4)


async def test_bad_signatures_and_bad_bodies_change_nothing(served: Served) -> None:
    sess = await _player(served, "dan", 1000)
    calls = _calls("dan", sess, "r1", ("bet", "d1", 100), ("win", "d2", 250))
    good = B.encode_batch(calls, NOW)
    wrong = dialects.batching(dialects.get("actions-hmac", SECRET + "-not"))
    assert wrong is not None
    tampered = HttpRequest(good.method, good.path, good.headers, good.body.replace(b'"amount":250', b'"amount":950'))
    unsigned = HttpRequest(good.method, good.path, {"Content-Type": "application/json"}, good.body)
    for req in (wrong.encode_batch(calls, NOW), tampered, unsigned):
        status, data, _ = await _post(served, req)
        assert status == 403 and data["code"] == 403, data
    assert await _state(served, "dan") == (1000, 0)

    def signed(doc: dict[str, Any]) -> HttpRequest:
        body = json.dumps(doc, separators=(",", ":")).encode()
        return HttpRequest("POST", "play", {"X-REQUEST-SIGN": D._digest(body)}, body)  # type: ignore[attr-defined]

    base = json.loads(good.body)
    rb = {"action": "rollback", "action_id": "d9", "original_action_id": "d1"}
    for doc in ({**base, "actions": [*base["actions"], rb]},
                {**base, "actions": [base["actions"][0], 7]},
                {**base, "actions": [base["actions"][0], {**base["actions"][1], "amount": -5}]},
                {**base, "actions": [base["actions"][0], {**base["actions"][1], "amount": 2.5}]},
                # (an unknown field in an action is ignored: tests/test_unknown_fields.py; a missing one is not)
                {**base, "actions": [base["actions"][0], {k: v for k, v in base["actions"][1].items() if k != "amount"}]},
                {**base, "actions": [base["actions"][0], {**base["actions"][1], "action_id": ""}]},
                {**base, "actions": [base["actions"][0]] * (MAX_BATCH + 1)},
                {**base, "currency": "XXX"}):
        status, data, _ = await _post(served, signed(doc))
        assert 400 <= status < 500 and data["code"] in (400, 154), (doc, data)
    assert await _state(served, "dan") == (1000, 0)
    status, data, _ = await _post(served, good)
    assert status == 200 and await _state(served, "dan") == (1150, 2)


# -- 3. croupier run sends a round's bet and win in one play ------------------------------------


def _run_options(sc: Any, base: str, run_id: str, seed: int = 5) -> Any:
    from simulator.run.runner import RunOptions
    from tests.support import ADMIN_TOKEN

    return RunOptions(sc, f"{base}/wallet/actions-hmac", SECRET, dialect="actions-hmac", admin_url=base,
                      admin_token=ADMIN_TOKEN, seed=seed, run_id=run_id)


async def test_a_chaos_run_sends_batches_and_is_clean() -> None:
    """Instant rounds go as one bet+win play, under every fault; the ledger finds nothing wrong."""
    from simulator.play import scenario as scenarios
    from simulator.run.runner import result_json, run
    from simulator.wallet.memory import MemoryStore
    from tests.test_runner import shrink, warm_players

    sc = shrink(scenarios.load("chaos"), duration_s=1.5, players=6)
    # A batching wire: some plays are answered for their first action only, too.
    sc = dataclasses.replace(sc, faults=dataclasses.replace(
        sc.faults, rates=dataclasses.replace(sc.faults.rates, partial_batch=0.05)))
    warm_players(sc, seed=5)
    async with serve_wallet(MemoryStore()) as served:
        result = await run(_run_options(sc, served.base, "batch-chaos"))
        held = {pid: (await served.admin.player(pid))["balance"] for pid in result.ledger.books}
    findings = [f"{f.kind}: {f.message}" for f in result.ledger.findings[:5]]
    assert result.verdict == "pass" and result.ledger.anomaly_count == 0, findings
    assert result.unsettled == 0 and not result.provision_errors
    report = result_json(result)
    assert report["batched"] == result.stats.calls["batch"] > 0
    assert result.stats.results["batch:ok"] > 0
    # Batches went through the faults too (one request each: duplicated, lost, timed out, read in part ...).
    assert result.stats.faults["duplicate"] > 0 and result.stats.faults["timeout"] > 0
    assert result.stats.faults["partial_batch"] > 0
    assert {pid: book.expected for pid, book in result.ledger.books.items()} == held


async def test_non_batching_dialects_send_no_batch() -> None:
    from simulator.play import scenario as scenarios
    from simulator.run.runner import RunOptions, run
    from simulator.wallet.memory import MemoryStore
    from tests.support import ADMIN_TOKEN

    sc = dataclasses.replace(scenarios.load("smoke"), duration_s=None, rounds=4, players=2, think_time_ms=(0, 5))
    async with serve_wallet(MemoryStore()) as served:
        result = await run(RunOptions(sc, f"{served.base}/wallet/token-query", SECRET, dialect="token-query",
                                      admin_url=served.base, admin_token=ADMIN_TOKEN, seed=3, run_id="nobatch"))
    assert result.verdict == "pass" and result.stats.calls["batch"] == 0 and result.stats.calls["bet"] > 0


async def test_a_wallet_that_repays_a_replayed_batch_is_caught() -> None:
    """Batches sent twice (duplicate delivery) to a wallet that pays a replayed win again: double_apply."""
    from simulator.judge.ledger import Anomaly
    from simulator.run.runner import run
    from tests.broken_wallets import make_broken_app, serve_app
    from tests.test_runner import _broken_scenario

    sc = _broken_scenario("duplicates", invalid=0.0, reorder=0.0)
    async with serve_app(make_broken_app("repays_replayed_wins")) as base:
        result = await run(_run_options(sc, base, "repays"))
    assert result.stats.calls["batch"] > 0
    assert result.verdict == "fail" and result.ledger.counts[Anomaly.DOUBLE_APPLY] > 0, \
        [f"{f.kind}: {f.message}" for f in result.ledger.findings[:5]]
    first = next(f for f in result.ledger.findings if f.kind is Anomaly.DOUBLE_APPLY)
    assert first.evidence and any('"actions":[{"action":"bet"' in (e.response or "") or e.call["op"] == "win"
                                  for e in first.evidence)


def test_the_ledger_judges_a_batch_action_by_action() -> None:
    """A refused bet's win was not tried: it has no effect (nothing left in doubt), and a wallet
    that paid it all the same is caught by the next balance it reports."""
    from simulator.judge.ledger import Ledger

    eur = currency("EUR")
    ledger = Ledger()
    ledger.open("p1", "EUR", 1000)
    calls = [_bet("t1", 5000), _win("t2", 9000)]
    tokens = ledger.begin_batch(calls)
    refused = Rejected(ErrorCode.INSUFFICIENT_FUNDS, "no")
    ledger.end(tokens[0], calls[0], refused, inner=True)
    ledger.end(tokens[1], calls[1], Unknown("not tried"), not_tried=True)
    assert ledger.anomaly_count == 0 and not ledger.in_doubt() and ledger.books["p1"].expected == 1000
    # Both Ok in one answer: only the last balance is on the wire and judged.
    calls = [_bet("t3", 100, rnd="r2"), _win("t4", 250, rnd="r2")]
    tokens = ledger.begin_batch(calls)
    ledger.end(tokens[0], calls[0], Ok(Money(900, eur), "w3"), inner=True)
    ledger.end(tokens[1], calls[1], Ok(Money(1150, eur), "w4"))
    assert ledger.anomaly_count == 0 and ledger.books["p1"].expected == 1150
    # The wallet had paid t2 anyway: the next solo answer shows it.
    bet = _bet("t5", 10, rnd="r3")
    ledger.end(ledger.begin(bet), bet, Ok(Money(1150 - 10 + 9000, eur), "w5"))
    assert ledger.anomaly_count == 1

"""``croupier replay-traffic``: a players file instead of an admin API, HAR input, and the batch-level judging.

Recordings are made as in tests/test_proxy.py (the mock provider playing through the proxy to the reference
wallet); replays go to a second wallet whose admin API the replay is never given.  The batch cases put the
proxy in front of the reference wallet, the independent lenient wallet (tests/lenient_wallet.py, behind a
batching wire) and a planted-bug wallet, and send the calls a provider would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from simulator.commands.cli import main
from simulator.drive import accounts as players_file
from simulator.drive.accounts import read_accounts
from simulator.drive.client import AdminError, WalletClient
from simulator.protocol.calls import Ok, Op, Outcome, Rejected, WalletCall
from simulator.protocol.codes import ErrorCode
from simulator.protocol.dialects import HttpRequest, batching, get
from simulator.protocol.money import Money
from simulator.proxy import recording
from simulator.proxy.faults import ProxyFault, ProxyFaults, Rule
from simulator.proxy.har import read_har
from simulator.proxy.replayer import ReplayError, replay
from simulator.proxy.server import final_report
from simulator.proxy.watch import Watch
from simulator.wallet.http import WalletConfig
from simulator.wallet.memory import MemoryStore
from simulator.wallet.service import make_app
from tests.support import ADMIN_TOKEN, ROOT, SECRET, FakeClock, serve_wallet
from tests.test_proxy import SIGNED, failing, serve_line, wallet_path


async def _record(tmp_path: Path, dialect: str, plan: ProxyFaults | None = None,
                  players: tuple[tuple[str, int, int], ...] = (("p-one", 100_00, 6), ("p-two", 50_00, 4)),
                  stakes: tuple[int, ...] = (10, 50, 100)) -> tuple[Path, dict[str, int]]:
    """A recording of the mock provider's rounds through the proxy; each player's balance at the end."""
    record = tmp_path / "traffic.jsonl"
    async with serve_line(dialect=dialect, faults=plan, record=record) as line:
        for pid, balance, rounds in players:
            await line.rounds(pid, rounds, balance=balance, stakes=stakes, ok=())
        report = await final_report(line.proxy)
    assert report["verdict"] == "pass", failing(report)
    return record, {p["player_id"]: p["balance_at_end"]["balance"] for p in report["players"]}


async def _accounts(admin: Any, path: Path, rows: list[tuple[str, int]], currency: str = "EUR") -> list[players_file.TestAccount]:
    """The operator's test accounts, made beforehand on the staging wallet, as a players file."""
    lines = ["player_id,token,currency"]
    for pid, balance in rows:
        await admin.create_player(pid, currency, balance)
        lines.append(f"{pid},{await admin.token(pid)},{currency}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return read_accounts(str(path))


# -- a players file instead of an admin API ------------------------------------------------------------------
@pytest.mark.parametrize("dialect", ["canonical", SIGNED])
async def test_a_players_file_replay_matches_call_by_call_without_the_admin_api(dialect: str, tmp_path: Path) -> None:
    record, ends = await _record(tmp_path, dialect, ProxyFaults(rules=[Rule(ProxyFault.LOST_RESPONSE, op=Op.BET,
                                                                            every=4)]))
    records = recording.read(record.read_bytes().splitlines())
    async with serve_wallet(MemoryStore()) as staging:
        accounts = await _accounts(staging.admin, tmp_path / "players.csv",
                                   [("acc-a", 300_00), ("acc-b", 50_00), ("acc-unused", 7)])
        result = await replay(records, f"{staging.base}{wallet_path(dialect)}", get(dialect, SECRET), None, None,
                              "pf-", accounts=accounts)
        doc = result.to_json()
        assert doc["verdict"] == "match", doc
        assert doc["different"] == 0 and doc["same"] >= 15
        one, two = doc["players"]["p-one"], doc["players"]["p-two"]
        assert (one["account"], one["account_balance"], one["shifted_by"]) == ("acc-a", 300_00, 200_00)
        assert (two["account"], two["account_balance"], two["shifted_by"]) == ("acc-b", 50_00, 0)
        assert doc["shifted"] and all(c["shifted_by"] == 200_00 and "players file" in c["why"]
                                      for c in doc["shifted"])
        with pytest.raises(AdminError):  # nothing was provisioned: the replay never called the admin API
            await staging.admin.player("pf-p-one")
        # Each account moved exactly as its recorded player did.
        assert (await staging.admin.player("acc-a"))["balance"] == 300_00 + ends["p-one"] - 100_00
        assert (await staging.admin.player("acc-b"))["balance"] == ends["p-two"]
        assert (await staging.admin.player("acc-unused"))["balance"] == 7


@pytest.mark.parametrize(("recorded", "account"), [(50, 500_00), (100_00, 50)])
async def test_a_refusal_for_funds_the_shift_explains_is_not_a_difference(recorded: int, account: int,
                                                                          tmp_path: Path) -> None:
    """An account holding more (or less) than the recorded player: a bet refused for funds on one side only
    is not comparable, nor is the rest of its round; the shift is taken afresh after it."""
    record, _ = await _record(tmp_path, "canonical", players=(("p-funds", recorded, 2),), stakes=(100,))
    records = recording.read(record.read_bytes().splitlines())
    async with serve_wallet(MemoryStore()) as staging:
        accounts = await _accounts(staging.admin, tmp_path / "players.csv", [("acc-f", account)])
        result = await replay(records, f"{staging.base}/wallet", get("canonical", SECRET), None, None, "f-",
                              accounts=accounts)
    doc = result.to_json()
    assert doc["verdict"] == "match" and doc["different"] == 0, doc
    notes = [c["why"] for c in doc["shifted"] if c["same"] is None]
    assert any(n.startswith("a refusal for funds on one side only") for n in notes), doc["shifted"]


def test_fewer_accounts_than_recorded_players_is_a_clear_error(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    traffic = tmp_path / "t.jsonl"
    traffic.write_bytes(b"".join(recording.line(
        seq=n, at=1.0, method="POST", path="authenticate", request_headers={}, request_body=b"{}", status=200,
        response_headers={}, response_body=b"{}", latency_ms=1.0, fault=None, copy=0, forwarded=True, visible=True,
        calls=[WalletCall.authenticate(f"t{n}", "g")],
        outcomes=[Ok(Money.of(100, "EUR"), player_id=f"p{n}", session_token=f"s{n}")]) for n in (1, 2)))
    players = tmp_path / "players.csv"
    players.write_text("player_id,token,currency\nacc-1,tok,EUR\n", encoding="utf-8")
    with pytest.raises(ReplayError, match="2 players in EUR but 1 accounts"):
        asyncio.run(replay(recording.read(traffic.read_bytes().splitlines()), "http://127.0.0.1:9/wallet",
                           get("canonical", SECRET), None, None, "x-", accounts=read_accounts(str(players))))
    argv = ["replay-traffic", str(traffic), "--wallet", "http://127.0.0.1:9/wallet", "--players", str(players)]
    assert main(argv) == 2
    assert "an account of its own" in capsys.readouterr().err
    assert main([*argv, "--admin-token", "t"]) == 2  # one way to find players, not two
    assert "give one or the other" in capsys.readouterr().err


# -- HAR -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", ["canonical", SIGNED, "token-query", "form-md5"])
async def test_a_har_recording_reads_as_the_json_lines_and_replays_call_by_call(dialect: str, tmp_path: Path) -> None:
    """``croupier proxy --har``'s file, plus what a browser's HAR also holds (a page, HTTP/2 pseudo-headers):
    decoded again at each entry's time (signatures valid then), a redacted secret put back."""
    record, _ = await _record(tmp_path, dialect, ProxyFaults(rules=[Rule(ProxyFault.SERVER_ERROR, op=Op.BET,
                                                                         every=3)]))
    lines = record.read_bytes().splitlines()
    har = recording.to_har(lines, "http://staging.example/api/wallet" + wallet_path(dialect).removeprefix("/wallet"))
    entries = har["log"]["entries"]
    entries[0]["request"]["headers"].append({"name": ":authority", "value": "staging.example"})
    post = entries[-1]["request"]["postData"]
    if post["mimeType"].startswith("application/x-www-form-urlencoded"):  # a form as some tools keep it
        from urllib.parse import parse_qsl

        post["params"] = [{"name": k, "value": v} for k, v in parse_qsl(post.pop("text"), keep_blank_values=True)]
    assert ("params" in post) is (dialect == "form-md5")
    entries.insert(1, {**entries[0], "request": {**entries[0]["request"], "method": "GET", "postData": None,
                                                 "url": "http://staging.example/favicon.ico"}})
    got = read_har(orjson.dumps(har), get(dialect, SECRET), SECRET)
    assert dict(got.skipped) == {"not a wallet call (the dialect reads none of its URL)": 1}
    jsonl = recording.read(lines)
    def meant(records: list[recording.Recorded]) -> list[Any]:  # what a request the proxy answered got: not used
        return [(r.calls, r.forwarded, r.outcomes if r.forwarded else None) for r in records]

    assert meant(got.records) == meant(jsonl)
    assert any(not r.forwarded for r in got.records)
    async with serve_wallet(MemoryStore()) as fresh:
        result = await replay(got.records, f"{fresh.base}{wallet_path(dialect)}", get(dialect, SECRET), fresh.base,
                              ADMIN_TOKEN, "har-")
    doc = result.to_json()
    assert doc["verdict"] == "match" and doc["different"] == 0 and doc["same"] >= 15, doc


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not JSON"),
    (b'{"log": {"version": "1.2"}}', "no log.entries list"),
    (b'{"log": {"entries": [{"request": {"method": "POST", "url": "http://w/bet"}}]}}', "entry 1: KeyError"),
    (b'{"log": {"entries": [{"startedDateTime": "yesterday", "request": {"method": "POST", "url": "http://w/b"}}]}}',
     "entry 1: ValueError"),
    ((b'{"log": {"entries": [{"startedDateTime": "2026-12-05T01:00:00Z", "request": {"method": "POST", '
      b'"url": "http://w/bet", "headers": {"a": "b"}}}]}}'), "headers must be a list"),
])
def test_a_malformed_har_is_a_clear_error_and_exit_2(content: bytes, message: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.har"
    bad.write_bytes(content)
    assert main(["replay-traffic", str(bad), "--wallet", "http://127.0.0.1:9/wallet"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(bad) in err and "HAR 1.2" in err, err


async def test_replay_traffic_of_a_har_on_a_players_file_on_the_command_line(tmp_path: Path) -> None:
    """The file told from its content (a .json name), the accounts from --players, no admin token given."""
    record, _ = await _record(tmp_path, "canonical", players=(("p-cli", 20_00, 4),))
    har = tmp_path / "devtools-export.json"
    har.write_bytes(orjson.dumps(recording.to_har(record.read_bytes().splitlines(), "https://staging.example/wallet")))
    async with serve_wallet(MemoryStore()) as staging:
        await _accounts(staging.admin, tmp_path / "players.csv", [("acc-cli", 25_00)])
        argv = [sys.executable, "-m", "simulator", "replay-traffic", str(har), "--wallet", f"{staging.base}/wallet",
                "--secret", SECRET, "--players", str(tmp_path / "players.csv"), "--json", str(tmp_path / "r.json")]
        done = await asyncio.to_thread(subprocess.run, argv, check=False, capture_output=True, text=True, timeout=120,
                                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: MATCH" in done.stdout and "replayed on account acc-cli (balance 2500" in done.stdout, done.stdout
    assert "comparisons shifted by 500: the players file's account holds another balance" in done.stdout
    doc = orjson.loads((tmp_path / "r.json").read_bytes())
    assert doc["players"]["p-cli"]["account"] == "acc-cli" and doc["players"]["p-cli"]["shifted_by"] == 500


# -- batches: the live-session allowance and the post-rollback bet check ----------------------------------------
def _lenient_batching() -> web.Application:
    """tests/lenient_wallet.py speaks the canonical wire only: here it also answers the batching wire, each call
    of a batch sent to it in turn and the first that is not a success stopping the rest (BatchDialect's rule)."""
    from tests.lenient_wallet import make_lenient_app

    app = make_lenient_app(SECRET, ADMIN_TOKEN)
    wire = batching(get(SIGNED, SECRET))
    assert wire is not None

    async def handle(request: web.Request) -> web.Response:
        path = request.match_info["tail"] + (f"?{request.query_string}" if request.query_string else "")
        got = wire.decode_batch(HttpRequest(request.method, path, dict(request.headers), await request.read()),
                                time.time())
        if isinstance(got, Rejected):
            resp = wire.encode_response(None, got)
        else:
            calls = got if isinstance(got, list) else [got]
            outcomes: list[Outcome] = []
            async with aiohttp.ClientSession() as http:
                client = WalletClient(f"{request.scheme}://{request.host}/wallet", get("canonical", SECRET), http)
                for call in calls:
                    outcomes.append((await client.exchange(call)).outcome)
                    if not isinstance(outcomes[-1], Ok):
                        break
            resp = wire.encode_batch_response(calls, outcomes) if len(calls) > 1 else \
                wire.encode_response(calls[0], outcomes[0])
        return web.Response(status=resp.status, headers=resp.headers, body=resp.body)

    app.router.add_route("*", f"/wallet/{SIGNED}/{{tail:.+}}", handle)
    return app


def _wallet(kind: str, clock: FakeClock | None = None) -> web.Application:
    from tests.planted_wallets import PLANTED, WinRefusedOnExpiredSession

    config = WalletConfig(SECRET, ADMIN_TOKEN, 3600, clock or time.time)
    if kind == "lenient":
        return _lenient_batching()
    store = {"reference": MemoryStore, "no_tombstone": PLANTED["no_tombstone"].store,
             "win_refused_on_expired_session": WinRefusedOnExpiredSession}[kind]()
    return make_app(store, config)


def _anomalies(report: dict[str, Any]) -> set[str]:
    return set(failing(report))


@pytest.mark.parametrize(("kind", "found"), [
    ("reference", set()), ("lenient", set()), ("no_tombstone", {"accepted_after_rollback"})])
async def test_a_bet_taken_after_its_rollback_inside_a_batch_is_caught(kind: str, found: set[str]) -> None:
    """PROTOCOL.md rule 5: "`rollback` of a `ref_tx_id` the wallet has never seen returns 200, changes nothing,
    and leaves a tombstone: a later `bet` with that `tx_id` is `TX_ROLLED_BACK` and changes nothing" — a bet
    inside a batch too (docs/dialects.md, Batches: "The actions are applied in the order listed, each as its
    own call under the normal rules (PROTOCOL.md)")."""
    async with serve_line(dialect=SIGNED, wallet=_wallet(kind)) as line:
        client = WalletClient(line.proxy_url, get(SIGNED, SECRET), line.api.http)
        token = await line.player("p-batch", 10_00)
        auth = (await client.exchange(WalletCall.authenticate(token, "g"))).outcome
        assert isinstance(auth, Ok) and auth.session_token
        s = auth.session_token
        rolled = await client.exchange(WalletCall.rollback("rb-1", "bet-1", "p-batch", s, "g", "r-1"))
        assert isinstance(rolled.outcome, Ok)  # of a bet the proxy never saw: from before it started, maybe
        batch = [WalletCall.bet("bet-1", "p-batch", s, "g", "r-1", Money.of(100, "EUR")),
                 WalletCall.win("win-1", "p-batch", s, "g", "r-1", Money.of(30, "EUR"), round_closed=True)]
        first = await client.exchange_batch(batch)
        again = await client.exchange_batch(batch)  # a retry: the wallet answers it as a replay
        report = await final_report(line.proxy)
    assert isinstance(first.outcome[0], Ok if found else Rejected)
    assert isinstance(again.outcome[0], Ok if found else Rejected)
    assert _anomalies(report) == found, failing(report)


@pytest.mark.parametrize(("kind", "live", "found"), [
    ("reference", False, set()), ("reference", True, set()), ("lenient", True, set()),
    ("win_refused_on_expired_session", True, set()),  # the dialect says a win may need a live session
    ("win_refused_on_expired_session", False, {"refused_valid_call"}),  # PROTOCOL.md: it must be accepted
])
async def test_a_win_inside_a_batch_on_an_ended_session_is_judged_by_the_dialects_semantics(
        kind: str, live: bool, found: set[str]) -> None:
    """PROTOCOL.md, Sessions: "`win` and `rollback` must be accepted with an expired session"; a dialect that
    says "A `win` or `rollback` on a session that has ended may be refused with `SESSION_EXPIRED`" allows it.
    Inside a batch as for a single call."""
    clock = FakeClock(time.time())
    async with serve_line(dialect=SIGNED, wallet=_wallet(kind, clock)) as line:
        sem = line.proxy.watch.ledger.semantics
        line.proxy.watch.ledger.semantics = dataclasses.replace(sem, wins_need_live_session=live)
        client = WalletClient(line.proxy_url, get(SIGNED, SECRET), line.api.http, clock=clock)
        await line.admin.create_player("p-live", "EUR", 10_00)
        auth = (await client.exchange(WalletCall.authenticate(await line.admin.token("p-live", 60), "g"))).outcome
        assert isinstance(auth, Ok) and auth.session_token
        s = auth.session_token
        bet = await client.exchange(WalletCall.bet("b-1", "p-live", s, "g", "r-1", Money.of(100, "EUR")))
        assert isinstance(bet.outcome, Ok)
        clock.advance(120)  # the session has ended; the round's wins come now, two in one request
        wins = await client.exchange_batch([
            WalletCall.win("w-1", "p-live", s, "g", "r-1", Money.of(50, "EUR")),
            WalletCall.win("w-2", "p-live", s, "g", "r-1", Money.of(20, "EUR"), round_closed=True)])
        report = await final_report(line.proxy)
    refused = isinstance(wins.outcome[0], Rejected) and wins.outcome[0].code is ErrorCode.SESSION_EXPIRED
    assert refused is (kind == "win_refused_on_expired_session")
    assert _anomalies(report) == found, failing(report)


def test_a_batch_sent_again_whose_amounts_cancel_is_no_finding() -> None:
    """A bet the wallet says it rolled back, in a batch with a win of the same amount, sent twice: the second
    answer (the balance unchanged) is what a replay gives — only a fresh call's amount is known to move."""
    watch = Watch(get(SIGNED, SECRET))

    def send(calls: list[WalletCall], outcomes: list[Outcome]) -> None:
        watch.saw(calls)
        watch.end(watch.begin(calls), calls, outcomes, visible=True, latency_ms=1.0, status=200, response=b"{}")

    send([WalletCall.balance("p", "s")], [Ok(Money.of(1000, "EUR"))])
    send([WalletCall.rollback("rb", "t1", "p", "s", "g", "r1")], [Ok(Money.of(1000, "EUR"), "w0")])
    batch = [WalletCall.bet("t1", "p", "s", "g", "r1", Money.of(100, "EUR")),
             WalletCall.win("t2", "p", "s", "g", "r1", Money.of(100, "EUR"))]
    send(batch, [Ok(Money.of(1100, "EUR"), "w1"), Ok(Money.of(1100, "EUR"), "w2")])  # a replay of t1: fine
    send(batch, [Ok(Money.of(1100, "EUR"), "w1"), Ok(Money.of(1100, "EUR"), "w2")])
    assert not {k for k, n in watch.summary()["anomalies"].items() if n}


def test_a_withdrawal_the_admin_api_cannot_repeat_says_why_its_comparisons_are_shifted() -> None:
    from simulator.proxy.matching import WITHDRAWN, Cashier, Comparison, compare
    from simulator.proxy.recording import Recorded

    cashier = Cashier(current={"p": 1000})
    bet = WalletCall.bet("t1", "p", "s", "g", "r1", Money.of(100, "EUR"))
    recorded = Ok(Money.of(600, "EUR"), "w")  # the recording held 700 before the bet: 300 left outside the traffic
    assert cashier.deposit(bet, "p", recorded) == 0 and cashier.why["p"] == WITHDRAWN
    rec = Recorded(7, 1.0, "bet", (bet,), (recorded,), True, None, 200)
    [got] = compare(rec, [Ok(Money.of(900, "EUR"), "w9")], cashier.offset["p"], cashier.why["p"])
    assert got == Comparison(7, "bet", "t1", "ok 600 EUR", "ok 900 EUR", True, 300, WITHDRAWN)
    assert "admin API can only deposit" in got.why
    [off] = compare(rec, [Ok(Money.of(800, "EUR"), "w9")], 300, WITHDRAWN)  # 100 more went: a difference
    assert off.same is False

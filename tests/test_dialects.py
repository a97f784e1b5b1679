"""The real-world wallet dialects and the declarative dialect file.

For every built-in dialect: encode then decode gives the call (and the outcome) back,
exactly, at every currency exponent the wire carries; signatures match vectors computed
here by an independent path (hashlib/hmac written out, the openssl CLI for RSA); the
wallet side refuses bad signatures with the dialect's own code; a chaos run against the
reference wallet in that dialect has no anomaly.  And the shipped TOML file reproduces
its built-in byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.commands.cli import main
from simulator.commands.dialectcmd import sample_calls
from simulator.protocol import dialects
from simulator.protocol.calls import Ok, Op, Rejected, Unknown, WalletCall, WinReason
from simulator.protocol.codes import PROTOCOL_CODES, ErrorCode
from simulator.protocol.dialects import DialectError, HttpRequest
from simulator.protocol.dialects.builtin import FORM_MD5, SPECS
from simulator.protocol.dialects.declarative import DeclarativeDialect, SpecError, load_file, load_spec
from simulator.protocol.money import CURRENCIES, INT64_MAX, Currency, Money, currency

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret"
NOW = 1_700_000_000.25
REAL_WORLD = list(SPECS)
ALL = ["canonical", *REAL_WORLD]

_DIALECTS = {n: dialects.get(n, SECRET) for n in ALL}


def dialect(name: str) -> dialects.Dialect:
    return _DIALECTS[name]


def carried(name: str) -> list[str]:
    d = dialect(name)
    return [c for c in CURRENCIES if dialects.carries(d, currency(c))]


ids = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)


def max_minor(name: str, cur: Currency) -> int:
    """The largest amount the wire holds: a 64-bit integer of its own unit (×100 000 holds less)."""
    spec = SPECS.get(name)
    if spec and spec["amount"]["encoding"] == "scaled" and cur.exponent <= spec["amount"]["places"]:
        return INT64_MAX // 10 ** (spec["amount"]["places"] - cur.exponent)
    return INT64_MAX


@st.composite
def calls(draw: st.DrawFn, name: str) -> WalletCall:
    cur = currency(draw(st.sampled_from(carried(name))))
    amount = Money(draw(st.one_of(st.integers(0, 10**6), st.integers(0, max_minor(name, cur)))), cur)
    op = draw(st.sampled_from(list(Op)))
    if op is Op.AUTHENTICATE:
        return WalletCall.authenticate(draw(ids), draw(ids))
    if op is Op.BALANCE:
        return WalletCall.balance(draw(ids), draw(ids))
    if op is Op.BET:
        return WalletCall.bet(draw(ids), draw(ids), draw(ids), draw(ids), draw(ids), amount)
    if op is Op.WIN:
        return WalletCall.win(draw(ids), draw(ids), draw(ids), draw(ids), draw(ids), amount,
                              draw(st.sampled_from(list(WinReason))), draw(st.booleans()))
    return WalletCall.rollback(draw(ids), draw(ids), draw(ids), draw(ids), draw(ids), draw(ids))


# -- 1. round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_every_call_round_trips(name: str) -> None:
    d = dialect(name)

    @given(calls(name))
    def check(call: WalletCall) -> None:
        assert d.decode_request(d.encode_call(call, NOW), NOW) == call

    check()


@pytest.mark.parametrize("name", ALL)
def test_every_outcome_round_trips(name: str) -> None:
    d = dialect(name)

    @given(calls(name), st.integers(0, 2**62), st.sampled_from(sorted(PROTOCOL_CODES - {ErrorCode.INTERNAL})))
    def check(call: WalletCall, balance_minor: int, code: ErrorCode) -> None:
        cur = call.amount.currency if call.amount else currency(carried(name)[0])
        balance = Money(min(balance_minor, max_minor(name, cur)), cur)
        if call.op is Op.AUTHENTICATE:
            ok = Ok(balance, player_id="p-1", session_token="s-1")
        elif call.op is Op.BALANCE:
            ok = Ok(balance)
        else:
            ok = Ok(balance, wallet_tx_id="w-17")
        got = d.decode_response(call, d.encode_response(call, ok))
        if call.op in (Op.BET, Op.WIN, Op.ROLLBACK) and "wallet_tx_id" not in _ok_sources(name):
            ok = Ok(balance, wallet_tx_id=call.tx_id)  # the wire has none: the provider's id stands in
        assert got == ok
        # A replay, and a rollback of an unknown transaction, are successes whatever the wire calls them.
        again = d.decode_response(call, d.encode_response(call, Ok(balance, ok.wallet_tx_id, ok.player_id,
                                                                   ok.session_token, replay=True, unknown_ref=True)))
        assert again == ok
        if call.op is Op.ROLLBACK and code is ErrorCode.ROUND_NOT_FOUND and name == "token-query":
            # token-query's BET_DOES_NOT_EXIST is both "no such round" and "cancel of an unknown bet"
            # (a success no-op); a rollback never earns ROUND_NOT_FOUND (wallet/rules.py), so on a
            # cancel the wire code means the no-op.
            return
        rejected = d.decode_response(call, d.encode_response(call, Rejected(code, "why")))
        assert isinstance(rejected, Rejected) and rejected.code is code
        assert isinstance(d.decode_response(call, d.encode_response(call, Unknown("store failure"))), Unknown)

    check()


def _ok_sources(name: str) -> set[str]:
    spec = SPECS.get(name)
    return {v for v in spec["response"]["ok_fields"].values() if isinstance(v, str)} if spec else {"wallet_tx_id"}


@pytest.mark.parametrize("name", REAL_WORLD)
def test_amounts_are_exact_at_every_exponent_or_refused(name: str) -> None:
    """Each currency's smallest unit and largest amount cross the wire exactly; a currency with more
    decimals than the wire carries is refused at encode time when the amount would lose digits."""
    d = dialect(name)
    for cur in CURRENCIES.values():
        for minor in (0, 1, 10**cur.exponent, 123456789, max_minor(name, cur), max_minor(name, cur) + 1):
            call = WalletCall.bet("t", "p", "s", "g", "r", Money(minor, cur))
            if minor > max_minor(name, cur) and dialects.carries(d, cur):
                if SPECS[name]["amount"]["encoding"] in ("minor", "scaled"):
                    with pytest.raises(DialectError, match="64-bit"):
                        d.encode_call(call, NOW)
                else:  # a decimal wire carries it; the wallet refuses what no balance column holds
                    refused = d.decode_request(d.encode_call(call, NOW), NOW)
                    assert isinstance(refused, Rejected) and refused.code is ErrorCode.BAD_REQUEST
                continue
            if minor > INT64_MAX:
                continue
            if dialects.carries(d, cur):
                assert d.decode_request(d.encode_call(call, NOW), NOW) == call
                continue
            limit = d.max_exponent
            if minor % 10 ** (cur.exponent - limit):
                with pytest.raises(DialectError, match="cannot carry"):
                    d.encode_call(call, NOW)
            else:  # expressible, but no account in that currency is served: refused as such
                decoded = d.decode_request(d.encode_call(call, NOW), NOW)
                assert isinstance(decoded, Rejected) and decoded.code is ErrorCode.CURRENCY_MISMATCH


def test_decimal_amounts_never_pass_through_a_float() -> None:
    d = dialect("token-query")
    call = WalletCall.bet("t", "p", "s", "g", "r", Money(INT64_MAX, currency("USDT")))
    body = json.loads(d.encode_call(call, NOW).body, parse_float=Decimal)
    assert body["transaction"]["amount"] == Decimal("9223372036854.775807")  # no float holds this
    raw = d.encode_call(call, NOW).body
    assert b'"amount":9223372036854.775807' in raw
    assert d.decode_request(d.encode_call(call, NOW), NOW) == call


# -- 2. signatures against independent vectors ---------------------------------------------------


def test_actions_hmac_signature_is_hmac_sha256_of_the_body() -> None:
    req = dialect("actions-hmac").encode_call(WalletCall.bet("t1", "p1", "s1", "g1", "r1", Money.of(250, "EUR")), NOW)
    assert req.body == (b'{"user_id":"p1","session_id":"s1","currency":"EUR","game":"g1","game_id":"r1",'
                        b'"finished":false,"actions":[{"action":"bet","action_id":"t1","amount":250}]}')
    assert req.headers["X-REQUEST-SIGN"] == hmac.new(b"test-secret", req.body, hashlib.sha256).hexdigest()


def test_form_md5_hash_is_md5_of_sorted_params_and_secret() -> None:
    req = dialect("form-md5").encode_call(WalletCall.bet("t1", "p1", "s1", "g1", "r1", Money.of(1234, "EUR")), NOW)
    params = dict(parse_qsl(req.body.decode()))
    written_out = ("amount=12.34&currency=EUR&gameId=g1&providerId=croupier&reference=t1&roundId=r1"
                   "&timestamp=1700000000250&token=s1&userId=p1" + "test-secret")
    assert params["hash"] == hashlib.md5(written_out.encode()).hexdigest()


def test_token_query_sends_the_static_token() -> None:
    req = dialect("token-query").encode_call(WalletCall.balance("p1", "s1"), NOW)
    assert req.path == "balance?authToken=test-secret"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")
def test_json_rsa_signature_verifies_with_openssl(tmp_path: Path) -> None:
    from simulator.protocol.dialects.keys import keys_for

    req = dialect("json-rsa").encode_call(WalletCall.balance("p1", "s1"), NOW)
    (tmp_path / "body").write_bytes(req.body)
    (tmp_path / "sig").write_bytes(base64.b64decode(req.headers["X-Hub88-Signature"]))
    (tmp_path / "pub.pem").write_bytes(keys_for(SECRET).provider.public_pem())
    out = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"), "-signature",
                          str(tmp_path / "sig"), str(tmp_path / "body")], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "Verified OK", out
    # ... and the wallet's answers are signed too, with the wallet's key.
    resp = dialect("json-rsa").encode_response(WalletCall.balance("p1", "s1"), Ok(Money.of(5, "EUR")))
    (tmp_path / "body").write_bytes(resp.body)
    (tmp_path / "sig").write_bytes(base64.b64decode(resp.headers["X-Hub88-Signature"]))
    (tmp_path / "pub.pem").write_bytes(keys_for(SECRET).wallet.public_pem())
    out = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"), "-signature",
                          str(tmp_path / "sig"), str(tmp_path / "body")], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "Verified OK", out


def test_json_rsa_keys_from_pem_files(tmp_path: Path) -> None:
    """A real onboarding: each side holds its private key and the other's public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def pair(name: str) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (tmp_path / f"{name}.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        (tmp_path / f"{name}.pub").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    pair("provider")
    pair("wallet")
    provider = dialects.get("json-rsa", f"{tmp_path}/provider.pem,{tmp_path}/wallet.pub")
    wallet = dialects.get("json-rsa", f"{tmp_path}/wallet.pem,{tmp_path}/provider.pub")
    call = WalletCall.balance("p1", "s1")
    assert wallet.decode_request(provider.encode_call(call, NOW), NOW) == call
    assert provider.decode_response(call, wallet.encode_response(call, Ok(Money.of(7, "EUR")))) == Ok(Money.of(7, "EUR"))
    # The provider's own key pair cannot pass for the wallet's answers.
    assert isinstance(provider.decode_response(call, provider.encode_response(call, Ok(Money.of(7, "EUR")))), Unknown)


WIRE_REFUSAL = {  # what each wallet answers a bad signature with: (HTTP status, wire code)
    "canonical": (401, "INVALID_SIGNATURE"),
    "json-rsa": (200, "RS_ERROR_INVALID_SIGNATURE"),
    "form-md5": (200, 5),
    "token-query": (401, "INVALID_TOKEN_ID"),
    "actions-hmac": (403, 403),
}


@pytest.mark.parametrize("name", ALL)
def test_wallet_refuses_bad_signatures_with_its_code(name: str) -> None:
    wallet = dialect(name)
    call = WalletCall.bet("t1", "p1", "s1", "g1", "r1", Money.of(100, "EUR"))
    wrong = dialects.get(name, SECRET + "-not-the-secret").encode_call(call, NOW)
    good = wallet.encode_call(call, NOW)
    tampered = HttpRequest(good.method, good.path, good.headers, good.body.replace(b"100", b"900").replace(b"1.00", b"9.00"))
    unsigned = HttpRequest(good.method, good.path.partition("?")[0],
                           {k: v for k, v in good.headers.items() if k.lower() == "content-type"},
                           b"&".join(p for p in good.body.split(b"&") if not p.startswith(b"hash=")))
    # A static token says who sends, not what: a tampered body passes it (the axis's weakness).
    cases = (wrong, unsigned) if name == "token-query" else (wrong, tampered, unsigned)
    for req in cases:
        refused = wallet.decode_request(req, NOW)
        assert isinstance(refused, Rejected) and refused.code is ErrorCode.INVALID_SIGNATURE, (req, refused)
        resp = wallet.encode_response(None, refused)
        status, code = WIRE_REFUSAL[name]
        assert resp.status == status
        assert code in json.loads(resp.body).values()
        # ... and the provider side reads it back as the canonical code.
        back = wallet.decode_response(call, resp)
        assert isinstance(back, Rejected) and back.code is ErrorCode.INVALID_SIGNATURE


@pytest.mark.parametrize("name", REAL_WORLD)
def test_bad_input_is_a_clear_rejection_never_an_exception(name: str) -> None:
    wallet = dialect(name)
    good = wallet.encode_call(WalletCall.bet("t1", "p1", "s1", "g1", "r1", Money.of(100, "EUR")), NOW)
    for body in (b"", b"{", b"[]", b"\xff\xfe", b"a=1&a=2", b'{"user":5}', b"x" * 70000):
        got = wallet.decode_request(HttpRequest(good.method, good.path, good.headers, body), NOW)
        assert isinstance(got, Rejected) and got.code in (ErrorCode.BAD_REQUEST, ErrorCode.INVALID_SIGNATURE), got
    got = wallet.decode_request(HttpRequest("POST", "nope", good.headers, good.body), NOW)
    assert isinstance(got, Rejected) and got.code is ErrorCode.BAD_REQUEST


# -- 3. the declarative file ---------------------------------------------------------------------


def test_shipped_file_reproduces_the_builtin_byte_for_byte() -> None:
    path = ROOT / "dialects" / "form-md5.toml"
    from_file = dialects.get(str(path), SECRET)
    builtin = dialect("form-md5")
    assert isinstance(from_file, DeclarativeDialect) and load_file(str(path)) == load_spec(FORM_MD5)
    for cur in ("EUR", "JPY"):
        for call in sample_calls(cur):
            a, b = from_file.encode_call(call, NOW), builtin.encode_call(call, NOW)
            assert (a.method, a.path, a.headers, a.body) == (b.method, b.path, b.headers, b.body)
            for outcome in (Ok(Money(1234, currency(cur)), "w1", "p1", "s1"), Rejected(ErrorCode.ROUND_CLOSED, "x"),
                            Unknown("boom")):
                ra, rb = from_file.encode_response(call, outcome), builtin.encode_response(call, outcome)
                assert (ra.status, ra.headers, ra.body) == (rb.status, rb.headers, rb.body)
            assert from_file.decode_request(b, NOW) == call


def test_dialect_check_and_sample_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dialect", "check", str(ROOT / "dialects" / "form-md5.toml")]) == 0
    assert "ok - dialect form-md5" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "mine"\n[amount]\nencoding = "float"\n[[operations]]\nop = "bet"\npath = "bet"\n'
                   'fields = { id = "tx_id" }\n')
    assert main(["dialect", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "amount.encoding" in err and "must carry player_id" in err and "nothing for rollback" in err
    (tmp_path / "broken.toml").write_text("name = [")
    assert main(["dialect", "check", str(tmp_path / "broken.toml")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["dialect", "check", str(tmp_path / "missing.toml")]) == 2
    for name in ALL:
        assert main(["dialect", "sample", name]) == 0
        out = capsys.readouterr().out
        batch = dialects.batching(dialect(name)) is not None  # plus one sample of a batch
        assert out.count("\n## ") == len(sample_calls("EUR")) + batch
    assert main(["dialect", "sample", str(ROOT / "dialects" / "form-md5.toml")]) == 0
    assert "POST /endRound.html" in capsys.readouterr().out
    assert main(["dialect", "sample", "no-such"]) == 2


def test_spec_problems_are_all_named() -> None:
    broken = json.loads(json.dumps(FORM_MD5))
    broken["response"]["codes"]["ROUND_CLOSED"] = 7  # the same wire code as BAD_REQUEST
    broken["operations"][4]["values"]["reason"]["free_spin"] = "spin"
    del broken["operations"][5]  # no endpoint for bonus wins
    with pytest.raises(SpecError) as err:
        load_spec(broken)
    text = str(err.value)
    assert "share a wire code" in text and "distinct wire values" in text and "bonus win" in text


# -- 4. end to end against the reference wallet --------------------------------------------------


@pytest.mark.parametrize("name", REAL_WORLD)
async def test_chaos_run_is_clean_in_every_dialect(name: str) -> None:
    from simulator.play import scenario as scenarios
    from simulator.run.runner import RunOptions, run
    from simulator.wallet.memory import MemoryStore
    from tests.support import ADMIN_TOKEN, serve_wallet
    from tests.support import SECRET as WALLET_SECRET
    from tests.test_runner import shrink, warm_players

    sc = shrink(scenarios.load("chaos"), duration_s=1.5, players=6)
    warm_players(sc, seed=11)
    async with serve_wallet(MemoryStore()) as served:
        result = await run(RunOptions(sc, f"{served.base}/wallet/{name}", WALLET_SECRET, dialect=name,
                                      admin_url=served.base, admin_token=ADMIN_TOKEN, seed=11, run_id=f"d-{name}"))
        held = {pid: (await served.admin.player(pid))["balance"] for pid in result.ledger.books}
    findings = [f"{f.kind}: {f.message}" for f in result.ledger.findings[:5]]
    assert result.verdict == "pass" and result.ledger.anomaly_count == 0, findings
    assert result.unsettled == 0 and not result.provision_errors
    assert result.stats.results["bet:ok"] > 0 and result.stats.results["win:ok"] > 0
    assert {pid: book.expected for pid, book in result.ledger.books.items()} == held
    # Only currencies the wire carries exactly were played.
    d = dialect(name)
    assert all(dialects.carries(d, currency(b.currency)) for b in result.ledger.books.values() if b.currency)

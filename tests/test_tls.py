"""HTTPS both ways: croupier's clients reach ``https://`` wallets, its servers serve TLS.

Every certificate is made here by ``trustme`` (a throw-away CA, a server certificate for 127.0.0.1 and
localhost, a client certificate): nothing is read from the machine's trust store, and nothing outlives the
test run.  The reference wallet and the mock provider run as ``croupier … serve --tls-cert --tls-key``
processes; the wallet that demands a client certificate (mutual TLS) is the reference wallet's app served
in a thread with ``verify_mode = CERT_REQUIRED``.  What is checked: ``run``, ``check`` and ``load`` pass
with ``--ca-bundle`` (``certify`` too), fail with exit code 2 and a sentence naming the certificate problem without it, pass
with ``--insecure`` and say so loudly; mutual TLS refuses a client without a certificate and accepts one
with ``--client-cert/--client-key``; the provider and the sandbox serve TLS and reach their wallet over it;
a bad certificate or key file is exit code 2 with a message, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import trustme
from aiohttp import web

from simulator.drive.client import AdminClient
from simulator.drive.tls import ClientTLS, TLSError, handshake_problem
from simulator.sandbox.server import ConfigError, SandboxOptions, start
from simulator.wallet.http import WalletConfig
from simulator.wallet.memory import MemoryStore
from simulator.wallet.service import make_app as make_wallet
from tests.planted_wallets import make_planted_app
from tests.support import ADMIN_TOKEN, ROOT, SECRET, free_port

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Certs:
    """PEM files of one throw-away PKI."""

    ca: Path
    """The CA that signed every certificate below."""
    cert: Path
    """The servers' certificate (127.0.0.1, localhost)."""
    key: Path
    client_cert: Path
    client_key: Path
    other_key: Path
    """A key of another certificate (matches neither of the above)."""
    other_ca: Path
    """A CA that signed nothing here."""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    d = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("croupier-client@example.com")
    stray = other.issue_cert("stray.example")
    files = Certs(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key",
                  d / "stray.key", d / "other-ca.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    other.cert_pem.write_to_path(str(files.other_ca))
    server.cert_chain_pems[0].write_to_path(str(files.cert))
    server.private_key_pem.write_to_path(str(files.key))
    client.cert_chain_pems[0].write_to_path(str(files.client_cert))
    client.private_key_pem.write_to_path(str(files.client_key))
    stray.private_key_pem.write_to_path(str(files.other_key))
    return files


def croupier(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True, check=False,
                          timeout=timeout, env=env, cwd=ROOT)


def one_line(text: str) -> str:
    return " ".join(text.split())


def trusting(certs: Certs) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca))


class Server:
    """``croupier wallet serve`` or ``croupier provider serve`` as a child process, ready once its ``/healthz``
    answers over HTTPS (verified against the test CA)."""

    def __init__(self, argv: list[str], port: int, ctx: ssl.SSLContext) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.base = f"https://127.0.0.1:{port}"
        # Its log to a file, not a pipe: a pipe nobody reads fills up with access lines and stalls the server.
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "simulator", *argv, "--port", str(port)], env=env,
                                     stdout=self.log, stderr=self.log, text=True)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{argv[:2]} exited with {self.proc.returncode}: {self.stop()}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1, context=ctx) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"{argv[:2]} did not answer over HTTPS") from None
                time.sleep(0.1)

    def stop(self) -> str:
        """Stop it; what it wrote (its log lines)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        return text


@pytest.fixture(scope="module")
def tls_wallet(certs: Certs) -> Iterator[Server]:
    """The reference wallet, in memory, over HTTPS only."""
    server = Server(["wallet", "serve", "--memory", "--secret", SECRET, "--admin-token", ADMIN_TOKEN,
                     "--tls-cert", str(certs.cert), "--tls-key", str(certs.key)], free_port(), trusting(certs))
    try:
        yield server
    finally:
        err = server.stop()
        assert f"croupier wallet on {server.base}/wallet" in err  # the start-up line says https://


@pytest.fixture(scope="module")
def mtls_wallet(certs: Certs) -> Iterator[str]:
    """The reference wallet's app behind TLS that requires a client certificate signed by the test CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certs.cert), str(certs.key))
    ctx.load_verify_locations(cafile=str(certs.ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    with serve_in_thread(make_wallet(MemoryStore(), WalletConfig(SECRET, ADMIN_TOKEN, 3600)), ctx) as base:
        yield base


@contextlib.contextmanager
def serve_in_thread(app: web.Application, ctx: ssl.SSLContext | None) -> Iterator[str]:
    """``app`` on 127.0.0.1 from a thread with its own loop, over TLS with ``ctx`` (for a CLI child to call)."""
    loop = asyncio.new_event_loop()
    port = free_port()
    runner = web.AppRunner(app, access_log=None)

    async def begin() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx).start()

    thread = threading.Thread(target=loop.run_forever, name="tls-server", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(begin(), loop).result(10)
    try:
        yield f"{'https' if ctx else 'http'}://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def run_args(base: str, *extra: str) -> list[str]:
    return ["run", "smoke", "--wallet", f"{base}/wallet", "--secret", SECRET, "--admin-token", ADMIN_TOKEN,
            "--player-count", "3", "--rounds", "3", "--settle-timeout", "10", *extra]


# -- croupier run -------------------------------------------------------------------------
def test_run_passes_over_https_with_the_ca_bundle_and_says_how_it_verified(
        tls_wallet: Server, certs: Certs, tmp_path: Path) -> None:
    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    proc = croupier(*run_args(tls_wallet.base, "--ca-bundle", str(certs.ca), "--json", str(json_path),
                              "--html", str(html_path), "--quiet"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = orjson.loads(json_path.read_bytes())
    assert report["verdict"] == "pass" and report["calls"].get("bet", 0) > 0, report
    assert report["tls"] == f"verified against the CA bundle {certs.ca}"
    assert "<th>TLS</th>" in html_path.read_text(encoding="utf-8")  # the environment block says it too
    assert "--insecure" not in proc.stderr


def test_run_without_the_ca_bundle_exits_2_naming_the_certificate_problem(tls_wallet: Server) -> None:
    proc = croupier(*run_args(tls_wallet.base, "--quiet"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    said = one_line(proc.stderr)
    assert "certificate verify failed" in said and "--ca-bundle" in said, said
    assert "Traceback" not in proc.stderr


def test_run_with_another_ca_names_the_bundle_given(tls_wallet: Server, certs: Certs) -> None:
    proc = croupier(*run_args(tls_wallet.base, "--ca-bundle", str(certs.other_ca), "--quiet"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    said = one_line(proc.stderr)
    assert "certificate verify failed" in said and "check that --ca-bundle holds the CA" in said, said


def test_run_insecure_passes_and_warns_every_time(tls_wallet: Server, tmp_path: Path) -> None:
    json_path = tmp_path / "r.json"
    proc = croupier(*run_args(tls_wallet.base, "--insecure", "--json", str(json_path), "--quiet"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING: --insecure" in proc.stderr and "NOT verified" in proc.stderr
    assert orjson.loads(json_path.read_bytes())["tls"] == "NOT verified (--insecure)"


def test_run_with_workers_passes_the_tls_flags_on(tls_wallet: Server, certs: Certs) -> None:
    proc = croupier(*run_args(tls_wallet.base, "--ca-bundle", str(certs.ca), "--workers", "2", "--quiet"))
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_an_https_url_on_a_plain_http_port_is_named() -> None:
    """``https://`` in front of a wallet that speaks plain HTTP: said so, not a bare SSL error."""
    with serve_in_thread(make_wallet(MemoryStore(), WalletConfig(SECRET, ADMIN_TOKEN, 3600)), None) as base:
        tls = ClientTLS()
        problem = handshake_problem("127.0.0.1", int(base.rsplit(":", 1)[1]), "/wallet", tls, tls.context())
    assert problem is not None and "does not speak TLS" in problem and "http://" in problem, problem


# -- mutual TLS ---------------------------------------------------------------------------
def test_mutual_tls_refuses_a_client_without_a_certificate(mtls_wallet: str, certs: Certs) -> None:
    proc = croupier(*run_args(mtls_wallet, "--ca-bundle", str(certs.ca), "--quiet"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    said = one_line(proc.stderr)
    assert "client certificate" in said and "--client-cert" in said, said


def test_mutual_tls_accepts_the_client_certificate(mtls_wallet: str, certs: Certs, tmp_path: Path) -> None:
    json_path = tmp_path / "r.json"
    proc = croupier(*run_args(mtls_wallet, "--ca-bundle", str(certs.ca), "--client-cert", str(certs.client_cert),
                              "--client-key", str(certs.client_key), "--json", str(json_path), "--quiet"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = orjson.loads(json_path.read_bytes())
    assert report["verdict"] == "pass" and report["calls"].get("bet", 0) > 0
    assert report["tls"].endswith(f"client certificate {certs.client_cert}")


# -- croupier check and croupier load ------------------------------------------------------
def test_check_over_https(tls_wallet: Server, certs: Certs, tmp_path: Path) -> None:
    args = ["check", "--wallet", f"{tls_wallet.base}/wallet", "--secret", SECRET, "--admin-token", ADMIN_TOKEN,
            "--budget", "3", "--no-db", "--out", str(tmp_path / "out"), "--json", str(tmp_path / "c.json")]
    proc = croupier(*args, "--ca-bundle", str(certs.ca))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert orjson.loads((tmp_path / "c.json").read_bytes())["examples"] > 0
    refused = croupier(*args)
    assert refused.returncode == 2
    assert "certificate verify failed" in one_line(refused.stdout + refused.stderr)


def test_check_finds_a_bug_over_https_and_its_curl_script_runs_over_tls(certs: Certs, tmp_path: Path) -> None:
    """The curl script of a failure verifies the wallet as the check did (``--cacert``), so it runs as written."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certs.cert), str(certs.key))
    out = tmp_path / "out"
    rule = "idempotency-5-tombstone"
    with serve_in_thread(make_planted_app("no_tombstone"), ctx) as base:
        proc = croupier("check", "--wallet", f"{base}/wallet", "--secret", SECRET, "--admin-token", ADMIN_TOKEN,
                        "--seed", "1", "--shrink-time", "20", "--no-db", "--budget", "3", "--rules", rule,
                        "--out", str(out), "--ca-bundle", str(certs.ca))
        assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
        script = out / f"{rule}.sh"
        assert f"--cacert {certs.ca.resolve()}" in script.read_text()
        ran = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60, check=False)
        again = croupier("replay", str(out / f"{rule}.json"), "--wallet", f"{base}/wallet", "--secret", SECRET,
                         "--admin-token", ADMIN_TOKEN, "--ca-bundle", str(certs.ca))
    assert again.returncode == 1, again.stdout[-2000:] + again.stderr[-2000:]  # replay too: still broken
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "[HTTP 200]" in ran.stdout and "curl:" not in ran.stderr, ran.stdout[-2000:] + ran.stderr[-2000:]


def test_certify_over_https(tls_wallet: Server, certs: Certs, tmp_path: Path) -> None:
    """certify's phases (each one of croupier's commands) get the TLS flags, and so do its own probes."""
    args = ["certify", "--wallet", f"{tls_wallet.base}/wallet", "--secret", SECRET, "--admin-token", ADMIN_TOKEN,
            "--phases", "docs,check,security,encryption", "--budget", "30", "--out", str(tmp_path / "out"), "--quiet"]
    refused = croupier(*args)
    assert refused.returncode == 2 and "certificate verify failed" in one_line(refused.stdout + refused.stderr)
    proc = croupier(*args, "--ca-bundle", str(certs.ca))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = orjson.loads((tmp_path / "out" / "certify.json").read_bytes())
    assert report["tls"] == f"verified against the CA bundle {certs.ca}"
    assert f"verified against the CA bundle {certs.ca}" in (tmp_path / "out" / "report.html").read_text()
    items = {i["title"]: i for i in report["items"]}
    assert items["Authentication tested"]["status"] == "pass", items["Authentication tested"]
    assert items["Documentation available"]["status"] == "pass", items["Documentation available"]
    assert items["Access controls verified"]["status"] == "pass", items["Access controls verified"]  # the security pass
    assert items["Encryption enforced"]["status"] == "pass", items["Encryption enforced"]
    security = orjson.loads((tmp_path / "out" / "security.json").read_bytes())
    assert not security.get("error"), security.get("error")
    check = orjson.loads((tmp_path / "out" / "check.json").read_bytes())
    assert check["tls"] == f"verified against the CA bundle {certs.ca}"


def test_the_pytest_plugin_checks_an_https_wallet(tls_wallet: Server, certs: Certs, tmp_path: Path) -> None:
    """``-p simulator.check.pytest_plugin --croupier-ca-bundle``: a user's own suite checks an https:// wallet."""
    (tmp_path / "test_my_wallet.py").write_text(
        "def test_wallet(croupier_check):\n    assert croupier_check(max_examples=5, budget_s=3).examples >= 1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CROUPIER_SECRET": SECRET, "CROUPIER_ADMIN_TOKEN": ADMIN_TOKEN}
    base = [sys.executable, "-m", "pytest", "-p", "simulator.check.pytest_plugin", "-q", "-p", "no:cacheprovider",
            "--rootdir", str(tmp_path), str(tmp_path), "--croupier-wallet", f"{tls_wallet.base}/wallet"]
    proc = subprocess.run([*base, "--croupier-ca-bundle", str(certs.ca)], capture_output=True, text=True,
                          check=False, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    bad = subprocess.run([*base, "--croupier-ca-bundle", str(certs.key)], capture_output=True, text=True,
                         check=False, timeout=120, env=env, cwd=tmp_path)
    assert bad.returncode != 0 and "not a PEM file of CA certificates" in bad.stdout + bad.stderr


def test_load_over_https(tls_wallet: Server, certs: Certs, tmp_path: Path) -> None:
    """Locust's users verify the wallet with the CA bundle (``--croupier-ca-bundle``), not Locust's default
    of no verification: the run passes with it, and is refused before Locust starts without it."""
    base = ["load", "smoke", "--wallet", f"{tls_wallet.base}/wallet", "--secret", SECRET, "--admin-token",
            ADMIN_TOKEN, "--users", "2", "--run-time", "3s", "--report-dir", str(tmp_path / "report"), "--quiet"]
    proc = croupier(*base, "--ca-bundle", str(certs.ca), "--json", str(tmp_path / "l.json"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = orjson.loads((tmp_path / "l.json").read_bytes())
    assert report["verdict"] == "pass" and report["calls"].get("bet", 0) > 0, report["calls"]
    assert report["locust"]["failures"] == 0 and report["tls"].startswith("verified against the CA bundle")
    refused = croupier(*base)
    assert refused.returncode == 2 and "certificate verify failed" in one_line(refused.stderr)


def test_locust_sessions_verify_with_the_settings_context(tls_wallet: Server, certs: Certs) -> None:
    """What ``croupier load`` hands Locust (``fast_http_tls``) decides: the system trust store refuses the
    test CA's certificate, the CA bundle accepts it, ``--insecure`` accepts anything (in a child process:
    Locust patches the interpreter with gevent)."""
    code = f"""
import locust  # noqa: F401 - gevent's monkey patching first, as in a Locust process
from locust.contrib.fasthttp import FastHttpSession
from locust.event import EventHook
from loadtests.settings import fast_http_tls
from simulator.drive.tls import ClientTLS
for tls in (ClientTLS(), ClientTLS(ca_bundle={str(certs.ca)!r}), ClientTLS(insecure=True)):
    s = FastHttpSession(None, EventHook(), None, **fast_http_tls(tls))
    r = s.get({tls_wallet.base + "/healthz"!r})
    error = getattr(r, "error", None)
    print(r.status_code, type(error).__name__ if error else "-", repr(error)[:200])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    lines = proc.stdout.split("\n")
    assert proc.returncode == 0 and len(lines) >= 3, proc.stderr[-2000:]
    assert lines[0].split()[0] == "0" and "CERTIFICATE_VERIFY_FAILED" in lines[0], lines
    assert lines[1].startswith("200 - ") and lines[2].startswith("200 - "), lines


# -- the provider and the sandbox ---------------------------------------------------------
async def test_provider_serves_tls_and_plays_against_an_https_wallet(tls_wallet: Server, certs: Certs) -> None:
    provider = await asyncio.to_thread(
        Server, ["provider", "serve", "--wallet", f"{tls_wallet.base}/wallet", "--secret", SECRET, "--api-key", "k",
                 "--ca-bundle", str(certs.ca), "--tls-cert", str(certs.cert), "--tls-key", str(certs.key)],
        free_port(), trusting(certs))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting(certs))) as http:
            admin = AdminClient(tls_wallet.base, ADMIN_TOKEN, http)
            await admin.create_player("tls-p1", "EUR", 10_000)
            token = await admin.token("tls-p1")
            body = {"player_id": "tls-p1", "currency": "EUR", "language": "en", "token": token,
                    "game_id": "roulette-eu"}
            async with http.post(f"{provider.base}/launch", json=body, headers={"Authorization": "Bearer k"}) as r:
                launch = await r.json()
                assert r.status == 200, launch
            assert launch["game_url"].startswith(provider.base)  # its public URLs say https://
            async with http.post(f"{provider.base}/play", json={"session_id": launch["session_id"], "stake": 100}) as r:
                played = await r.json()
                assert r.status == 200, played
            assert (await admin.player("tls-p1"))["balance"] != 10_000 or played
    finally:
        err = await asyncio.to_thread(provider.stop)
    assert f"croupier provider on {provider.base}" in err
    assert "certificate verify failed" not in err


def test_provider_warns_at_start_up_when_it_cannot_verify_its_wallet(tls_wallet: Server, certs: Certs) -> None:
    provider = Server(["provider", "serve", "--wallet", f"{tls_wallet.base}/wallet", "--secret", SECRET,
                       "--api-key", "k", "--tls-cert", str(certs.cert), "--tls-key", str(certs.key)],
                      free_port(), trusting(certs))
    time.sleep(0.5)
    err = one_line(provider.stop())
    assert "certificate verify failed" in err and "--ca-bundle" in err, err


@pytest.fixture
async def tls_sandbox(certs: Certs) -> AsyncIterator[Any]:
    sb = await start(SandboxOptions(port=0, seed=7, tls_cert=str(certs.cert), tls_key=str(certs.key)))
    try:
        yield sb
    finally:
        await sb.stop()


async def test_sandbox_serves_tls_and_plays_a_round(tls_sandbox: Any, certs: Certs) -> None:
    """The lobby, the wallet and the provider all on https://; the provider reaches the embedded wallet and the
    lobby reaches both over TLS (pinned to the sandbox's certificate): a round plays end to end."""
    sb = tls_sandbox
    assert all(u.startswith("https://") for u in (sb.lobby_url, sb.provider_url, sb.wallet_url, sb.admin_url))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting(certs))) as http:
        async with http.post(f"{sb.lobby_url}/api/players", json={"currency": "EUR", "balance": "100"}) as r:
            player = await r.json()
            assert r.status == 201, player
        async with http.get(f"{sb.lobby_url}/api/config") as r:
            game = (await r.json())["games"][0]["game_id"]
        async with http.post(f"{sb.lobby_url}/api/launch", json={"player_id": player["player_id"],
                                                                  "game_id": game}) as r:
            launch = await r.json()
            assert r.status == 200, launch
        assert launch["game_url"].startswith(sb.provider_url)
        async with http.post(f"{sb.lobby_url}/api/sessions/{launch['session_id']}/play", json={"stake": 10}) as r:
            played = await r.json()
            assert r.status == 200 and played["round"]["status"] == "settled", played


async def test_sandbox_refuses_a_bad_certificate(certs: Certs) -> None:
    with pytest.raises(ConfigError, match="does not match"):
        await start(SandboxOptions(port=0, tls_cert=str(certs.cert), tls_key=str(certs.other_key)))


# -- bad files ----------------------------------------------------------------------------
BAD_CLIENT_FILES = [
    (["--ca-bundle", "{d}/missing.pem"], "--ca-bundle {d}/missing.pem: cannot read it"),
    (["--ca-bundle", "{key}"], "not a PEM file of CA certificates"),
    (["--client-cert", "{client_cert}", "--client-key", "{other_key}"], "does not match the certificate"),
    (["--client-cert", "{client_cert}"], "holds no private key: pass --client-key"),
    (["--client-key", "{client_key}"], "--client-key needs --client-cert"),
    (["--client-cert", "{key}", "--client-key", "{client_key}"], "not a PEM certificate"),
    (["--insecure", "--ca-bundle", "{ca}"], "--insecure turns verification off"),
]


def _fill(args: list[str], certs: Certs, d: Path) -> list[str]:
    names = {"d": str(d), "ca": str(certs.ca), "key": str(certs.key), "client_cert": str(certs.client_cert),
             "client_key": str(certs.client_key), "other_key": str(certs.other_key), "cert": str(certs.cert)}
    return [a.format(**names) for a in args]


@pytest.mark.parametrize(("flags", "says"), BAD_CLIENT_FILES,
                         ids=["missing", "not-pem", "key-mismatch", "no-key", "key-alone", "cert-not-pem",
                              "insecure-and-bundle"])
def test_bad_client_files_exit_2_with_a_message(flags: list[str], says: str, certs: Certs, tmp_path: Path) -> None:
    proc = croupier(*run_args("https://127.0.0.1:9", *_fill(flags, certs, tmp_path), "--quiet"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert says.format(d=tmp_path) in one_line(proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [
    ["check", "--wallet", "https://127.0.0.1:9/wallet", "--budget", "1"],
    ["load", "smoke", "--wallet", "https://127.0.0.1:9/wallet", "--run-time", "1s"],
    ["provider", "serve", "--wallet", "https://127.0.0.1:9/wallet", "--port", "0"],
    ["sandbox", "--port", "0"],
], ids=["check", "load", "provider", "sandbox"])
def test_every_client_refuses_a_bad_ca_bundle(command: list[str], certs: Certs) -> None:
    proc = croupier(*command, "--ca-bundle", str(certs.key), timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "not a PEM file of CA certificates" in one_line(proc.stderr), proc.stderr


@pytest.mark.parametrize(("command", "flags", "says"), [
    (["wallet", "serve", "--memory"], ["--tls-cert", "{d}/nope.pem", "--tls-key", "{key}"], "cannot read it"),
    (["wallet", "serve", "--memory"], ["--tls-cert", "{cert}", "--tls-key", "{other_key}"], "does not match"),
    (["wallet", "serve", "--memory"], ["--tls-key", "{key}"], "--tls-key needs --tls-cert"),
    (["provider", "serve", "--wallet", "http://127.0.0.1:9/wallet"], ["--tls-cert", "{ca}", "--tls-key", "{ca}"],
     "not a PEM private key"),
    (["sandbox"], ["--tls-cert", "{cert}"], "holds no private key: pass --tls-key"),
], ids=["wallet-missing", "wallet-mismatch", "wallet-key-alone", "provider-key-not-pem", "sandbox-no-key"])
def test_bad_server_files_exit_2_with_a_message(command: list[str], flags: list[str], says: str, certs: Certs,
                                                tmp_path: Path) -> None:
    proc = croupier(*command, "--port", "0", *_fill(flags, certs, tmp_path), timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert says in one_line(proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_encrypted_key_is_refused_without_a_prompt(certs: Certs, tmp_path: Path) -> None:
    key = tmp_path / "encrypted.key"
    key.write_text("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n")
    with pytest.raises(TLSError, match="encrypted"):
        ClientTLS(client_cert=str(certs.client_cert), client_key=str(key)).context()

"""What a Locust run of croupier is told: Locust custom arguments, and the scenario they name.

Every setting is a Locust custom argument (``--croupier-*``, each also an environment
variable), because Locust hands custom arguments from the master to every worker with the
first spawn message: workers on other machines need nothing but ``--worker --master-host``.

A scenario file means the same to ``croupier run`` and to Locust.  A ``[load]`` table in it
holds what only a load test needs (its thresholds and shape)::

    [load]
    fail_on = ["p99(bet)>250ms", "error_rate>0.1%"]
    shape = "spike"
    users = 200
    spawn_rate = 50

No Locust import here: ``croupier load`` validates the same way before it starts Locust.
"""

from __future__ import annotations

import functools
import secrets
import ssl
import tomllib
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from simulator.drive.tls import ClientTLS
from simulator.play import scenario as scenarios
from simulator.play.scenario import Scenario, ScenarioError
from simulator.protocol.findings import Severity
from simulator.protocol.signing import DEV_ADMIN_TOKEN, DEV_SECRET

from . import curves, verdict

DEV_PROVIDER_KEY: Final = "croupier-dev-provider-key"
LOAD_KEYS: Final = ("fail_on", "shape", "users", "spawn_rate")


@dataclass(frozen=True, slots=True)
class LoadSection:
    """The scenario's ``[load]`` table."""

    fail_on: tuple[str, ...] = ()
    shape: str | None = None
    users: int | None = None
    spawn_rate: float | None = None


def load_scenario(name_or_path: str) -> tuple[Scenario, LoadSection]:
    """The scenario, validated by the core, and its ``[load]`` table, validated here.

    (``simulator.play.scenario`` does not know ``[load]`` yet; it is taken out before the core
    parses the rest, so the same file is read the same way by both.)"""
    path = scenarios.find(name_or_path)
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    raw = data.pop("load", {})
    where = str(path)
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: [load] must be a table")
    unknown = sorted(set(raw) - set(LOAD_KEYS))
    if unknown:
        raise ScenarioError(f"{where}: unknown key load.{unknown[0]} (known: {', '.join(LOAD_KEYS)})")
    fail_on = raw.get("fail_on", [])
    if not isinstance(fail_on, list) or not all(isinstance(x, str) for x in fail_on):
        raise ScenarioError(f"{where}: load.fail_on must be a list of thresholds such as \"p99(bet)>250ms\"")
    try:
        verdict.parse_all(fail_on)
    except verdict.ThresholdError as exc:
        raise ScenarioError(f"{where}: load.fail_on: {exc}") from None
    shape = raw.get("shape")
    if shape is not None and (not isinstance(shape, str) or shape not in curves.SHAPES):
        raise ScenarioError(f"{where}: load.shape must be one of {', '.join(curves.SHAPES)}")
    users = raw.get("users")
    if users is not None and (type(users) is not int or users < 1):
        raise ScenarioError(f"{where}: load.users must be a positive integer")
    rate = raw.get("spawn_rate")
    if rate is not None and (not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0):
        raise ScenarioError(f"{where}: load.spawn_rate must be a positive number")
    return scenarios.parse(data, where), LoadSection(tuple(fail_on), shape, users,
                                                     None if rate is None else float(rate))


def admin_url_for(wallet_url: str) -> str:
    parts = urlsplit(wallet_url)
    return f"{parts.scheme}://{parts.netloc}"


def add_arguments(parser: Any) -> None:
    """Register the ``--croupier-*`` custom arguments on Locust's parser."""
    g = parser  # (an argument group would not take Locust's include_in_web_ui / is_secret)
    g.add_argument("--croupier-scenario", env_var="CROUPIER_SCENARIO", default="smoke",
                   help="built-in scenario name or .toml file (default: smoke)")
    g.add_argument("--croupier-wallet", env_var="CROUPIER_WALLET", default="",
                   help="the wallet's protocol base URL, e.g. http://127.0.0.1:8080/wallet (default: --host)")
    g.add_argument("--croupier-provider", env_var="CROUPIER_PROVIDER", default="",
                   help="play through the mock provider at this base URL (ProviderPlayer) instead of the wallet")
    g.add_argument("--croupier-provider-key", env_var="CROUPIER_PROVIDER_KEY", default=DEV_PROVIDER_KEY,
                   is_secret=True, help="the provider's operator API key")
    g.add_argument("--croupier-dialect", env_var="CROUPIER_DIALECT", default="canonical")
    g.add_argument("--croupier-secret", env_var="CROUPIER_SECRET", default=DEV_SECRET, is_secret=True,
                   help="HMAC secret shared with the wallet")
    g.add_argument("--croupier-admin-url", env_var="CROUPIER_ADMIN_URL", default="",
                   help="reference-wallet admin API that provisions players (default: the wallet's host)")
    g.add_argument("--croupier-admin-token", env_var="CROUPIER_ADMIN_TOKEN", default=DEV_ADMIN_TOKEN, is_secret=True)
    g.add_argument("--croupier-seed", env_var="CROUPIER_SEED", type=int, default=1,
                   help="seeds players, games and faults")
    g.add_argument("--croupier-run-id", env_var="CROUPIER_RUN_ID", default=secrets.token_hex(3),
                   help="prefix of player ids (the master's value reaches every worker)")
    g.add_argument("--croupier-fail-on", env_var="CROUPIER_FAIL_ON", default="",
                   help="thresholds, separated by ';', e.g. 'p99(bet)>250ms;error_rate>0.1%%'")
    g.add_argument("--croupier-severity", env_var="CROUPIER_SEVERITY", default="contract",
                   choices=[s.value for s in Severity],
                   help="the least severe finding that fails the run: money, contract (default) or note")
    g.add_argument("--croupier-ca-bundle", env_var="CROUPIER_CA_BUNDLE", default="",
                   help="PEM CA certificates that sign the wallet's (and provider's) TLS certificate, trusted instead "
                        "of the system trust store; the path must exist on every worker")
    g.add_argument("--croupier-client-cert", env_var="CROUPIER_CLIENT_CERT", default="",
                   help="PEM client certificate for a wallet that asks for one (mutual TLS)")
    g.add_argument("--croupier-client-key", env_var="CROUPIER_CLIENT_KEY", default="",
                   help="PEM private key of --croupier-client-cert (default: in the certificate's file)")
    g.add_argument("--croupier-insecure", env_var="CROUPIER_INSECURE", action="store_true", default=False,
                   help="do not verify TLS certificates at all (sandboxes only)")
    g.add_argument("--croupier-summary", env_var="CROUPIER_SUMMARY", default="", include_in_web_ui=False,
                   help="the master writes croupier's end-of-run report (JSON) here")
    g.add_argument("--croupier-progress", env_var="CROUPIER_PROGRESS", default="", include_in_web_ui=False,
                   help="the master rewrites this JSON file once a second (calls, users, failures, findings, "
                        "phase): croupier load's live progress")


@dataclass(frozen=True, slots=True)
class Settings:
    scenario: Scenario
    load: LoadSection
    wallet_url: str
    admin_url: str
    provider_url: str | None
    provider_key: str
    dialect: str
    secret: str
    admin_token: str
    seed: int
    run_id: str
    fail_on: tuple[str, ...]
    summary_path: str | None
    severity: Severity = Severity.CONTRACT
    """Findings of this severity and worse fail the run (``--fail-on note|contract|money``)."""
    tls: ClientTLS = field(default_factory=ClientTLS)
    """How ``https://`` targets are verified, and the client certificate shown (``--croupier-ca-bundle``...)."""

    @property
    def thresholds(self) -> list[verdict.Threshold]:
        return verdict.parse_all(self.fail_on)


def from_options(options: Any, host: str | None) -> Settings:
    """Settings from Locust's parsed options (``host``: Locust's ``--host``, the wallet by default)."""
    scenario, load = load_scenario(options.croupier_scenario)
    wallet = (options.croupier_wallet or host or "").rstrip("/")
    if not wallet:
        raise ScenarioError("no wallet: pass --croupier-wallet URL (or --host URL)")
    cli = tuple(t.strip() for t in (options.croupier_fail_on or "").split(";") if t.strip())
    verdict.parse_all(cli)
    return Settings(
        scenario=scenario, load=load, wallet_url=wallet,
        admin_url=(options.croupier_admin_url or admin_url_for(wallet)).rstrip("/"),
        provider_url=(options.croupier_provider or "").rstrip("/") or None,
        provider_key=options.croupier_provider_key, dialect=options.croupier_dialect,
        secret=options.croupier_secret, admin_token=options.croupier_admin_token, seed=int(options.croupier_seed),
        run_id=options.croupier_run_id, fail_on=load.fail_on + cli,
        summary_path=options.croupier_summary or None,
        severity=Severity(getattr(options, "croupier_severity", None) or "contract"),
        tls=tls_of(options),
    )


def tls_of(options: Any) -> ClientTLS:
    """The ``--croupier-*`` TLS options (absent ones, from an older master: the defaults)."""
    return ClientTLS(ca_bundle=getattr(options, "croupier_ca_bundle", "") or None,
                     client_cert=getattr(options, "croupier_client_cert", "") or None,
                     client_key=getattr(options, "croupier_client_key", "") or None,
                     insecure=bool(getattr(options, "croupier_insecure", False)))


@functools.cache
def tls_context(tls: ClientTLS) -> ssl.SSLContext:
    """This process's one client context for ``tls`` (built on first use)."""
    return tls.context()


def fast_http_tls(tls: ClientTLS) -> dict[str, Any]:
    """What a ``FastHttpSession`` (or a ``FastHttpUser``'s attributes) is told so that it verifies as ``croupier
    run`` does: ``insecure`` (geventhttpclient then checks no hostname) and an ``ssl_context_factory``.

    The factory returns one context per process, built on first use (in a Locust process, after gevent patched
    :mod:`ssl`, so it is gevent's class); it ignores the ``cafile`` geventhttpclient offers (certifi's bundle):
    the system trust store or ``--croupier-ca-bundle`` decides, as in every other croupier client."""

    def factory(cafile: str | None = None, **_: Any) -> ssl.SSLContext:
        return tls_context(tls)

    return {"insecure": tls.insecure, "ssl_context_factory": factory}


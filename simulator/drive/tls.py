"""TLS for croupier's clients and servers: the command line's file names made into an :class:`ssl.SSLContext`.

Why one module: ``run``, ``check``, ``load``, the mock provider and the sandbox must verify a wallet alike
(the system trust store by default, a private CA with ``--ca-bundle``, a client certificate for mutual TLS,
nothing at all with ``--insecure``) and refuse an unusable file with the same sentence — naming the flag, the
file and what is wrong with it — before anything is sent (exit code 2, never a traceback).  OpenSSL's own
words for a bad file ("PEM lib") say nothing a user can act on, so the files are looked at first.

It also says, in one sentence naming the fix, why a TLS handshake failed (:func:`handshake_problem`): a
certificate nobody trusts, a name it was not issued for, a wallet that wants a client certificate, a plain
HTTP port behind an ``https://`` URL.  The commands call it before their first call, where it is cheap.
"""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Final

INSECURE_WARNING: Final = (
    "WARNING: --insecure: the wallet's TLS certificate is NOT verified: anyone on the way can read and change "
    "every call. Use it against a sandbox only; --ca-bundle FILE trusts a private CA instead.")
"""What every command given ``--insecure`` prints on stderr, every time."""


class TLSError(ValueError):
    """A certificate or key file that cannot be used, or flags that contradict each other: one sentence
    naming the flag and the file (the commands' exit code 2)."""


@dataclass(frozen=True, slots=True)
class ClientTLS:
    """How a croupier client verifies the wallet, and which certificate it shows it (``--ca-bundle``,
    ``--client-cert``, ``--client-key``, ``--insecure``).  File names, not a context: options travel to
    worker processes and Locust's workers as text, and each process builds its own context."""

    ca_bundle: str | None = None
    """PEM file of the CA certificates to trust instead of the system trust store."""
    client_cert: str | None = None
    """PEM certificate (chain) to show a wallet that asks for one (mutual TLS)."""
    client_key: str | None = None
    """PEM private key of ``client_cert`` (None: the key is in ``client_cert``'s file)."""
    insecure: bool = False
    """No verification at all (a sandbox with a throw-away certificate only)."""

    def context(self) -> ssl.SSLContext:
        """A new client context (:func:`client_context`); :class:`TLSError` for an unusable file."""
        return client_context(self)

    def describe(self) -> str:
        """How the wallet's certificate was checked, for a report's environment block."""
        if self.insecure:
            how = "NOT verified (--insecure)"
        elif self.ca_bundle:
            how = f"verified against the CA bundle {self.ca_bundle}"
        else:
            how = "verified against the system trust store"
        if self.client_cert:
            how += f"; client certificate {self.client_cert}"
        return how

    def argv(self) -> list[str]:
        """These options as command-line flags (for worker processes started with the same flags)."""
        out: list[str] = []
        for flag, value in (("--ca-bundle", self.ca_bundle), ("--client-cert", self.client_cert),
                            ("--client-key", self.client_key)):
            if value:
                out += [flag, value]
        return out + (["--insecure"] if self.insecure else [])


def client_context(tls: ClientTLS) -> ssl.SSLContext:
    """The context every client of a wallet uses: verification on (hostname included) against the system
    trust store or ``ca_bundle``; off with ``insecure``; ``client_cert``/``client_key`` loaded for mutual TLS.

    Built with the :mod:`ssl` module as it is when called, so in a gevent-patched process (Locust) it is
    gevent's context class, as gevent's sockets need."""
    if tls.client_key and not tls.client_cert:
        raise TLSError("--client-key needs --client-cert (the certificate the key belongs to)")
    if tls.insecure and tls.ca_bundle:
        raise TLSError("--insecure turns verification off: --ca-bundle would not be used; pass one or the other")
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if tls.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif tls.ca_bundle:
        _read_pem("--ca-bundle", tls.ca_bundle, "CERTIFICATE", "a PEM file of CA certificates")
        try:
            ctx.load_verify_locations(cafile=tls.ca_bundle)
        except ssl.SSLError as exc:
            raise TLSError(f"--ca-bundle {tls.ca_bundle}: OpenSSL cannot use it ({_reason(exc)})") from None
    if tls.client_cert:
        _load_chain(ctx, tls.client_cert, tls.client_key, "--client-cert", "--client-key")
    return ctx


def server_context(cert: str, key: str | None) -> ssl.SSLContext:
    """The context of ``wallet serve``, ``provider serve`` and ``sandbox`` with ``--tls-cert``/``--tls-key``:
    Python's defaults for a server (TLS 1.2 and later, its cipher choice), this certificate and key."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _load_chain(ctx, cert, key, "--tls-cert", "--tls-key")
    return ctx


def pinned_context(cert: str) -> ssl.SSLContext:
    """A client context that trusts exactly the certificate in ``cert`` (and any CA in the same file), whatever
    names it carries: how the sandbox's provider and lobby reach the sandbox's own TLS servers, on loopback,
    with whatever certificate the user gave it (the user's clients verify it as they see fit)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False  # the certificate itself is the anchor: pinned, not looked up by name
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    try:
        ctx.load_verify_locations(cafile=cert)
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(f"--tls-cert {cert}: cannot trust it ({_reason(exc)})") from None
    return ctx


def _load_chain(ctx: ssl.SSLContext, cert: str, key: str | None, cert_flag: str, key_flag: str) -> None:
    """Load a certificate and its key, each file looked at first so a bad one is named with its flag."""
    cert_text = _read_pem(cert_flag, cert, "CERTIFICATE", "a PEM certificate")
    if key:
        key_text = _read_pem(key_flag, key, "PRIVATE KEY", "a PEM private key")
    elif "PRIVATE KEY-----" in cert_text:
        key_text = cert_text
    else:
        raise TLSError(f"{cert_flag} {cert} holds no private key: pass {key_flag} FILE")
    if "ENCRYPTED" in key_text:
        raise TLSError(f"{key_flag if key else cert_flag} {key or cert}: the private key is encrypted; croupier "
                       "takes an unencrypted one (openssl pkey -in KEY -out PLAIN.pem), readable by you only")
    try:
        # An empty password: an encrypted key fails here instead of prompting on the terminal.
        ctx.load_cert_chain(cert, key, password="")
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise TLSError(f"{key_flag} {key or cert} does not match the certificate in {cert_flag} {cert}") from None
        raise TLSError(f"{cert_flag} {cert} / {key_flag} {key or cert}: OpenSSL cannot use them "
                       f"({_reason(exc)})") from None
    except OSError as exc:
        raise TLSError(f"{cert_flag} {cert}: cannot read it ({exc.strerror or exc})") from None


def _read_pem(flag: str, path: str, label: str, what: str) -> str:
    """The file's text, or a :class:`TLSError` saying why it is not ``what``."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except IsADirectoryError:
        raise TLSError(f"{flag} {path}: a directory, not {what}") from None
    except OSError as exc:
        raise TLSError(f"{flag} {path}: cannot read it ({exc.strerror or exc})") from None
    if f"-----BEGIN {label}-----" not in text and not (label == "PRIVATE KEY" and "PRIVATE KEY-----" in text):
        raise TLSError(f"{flag} {path}: not {what} (no '-----BEGIN {label}-----' line; a DER file converts with "
                       f"openssl x509 -inform der -in FILE -out FILE.pem)")
    return text


def _reason(exc: BaseException) -> str:
    """OpenSSL's reason in words, without its bracketed library tag (which a terminal's markup would eat)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        text = str(exc.verify_message or exc.reason or exc)
    elif isinstance(exc, ssl.SSLError):
        text = str(exc.reason or exc.strerror or exc).replace("_", " ").lower()
    elif isinstance(exc, OSError):
        text = str(exc.strerror or exc)
    else:
        text = str(exc)
    return re.sub(r"\[[^\]]*\]\s*", "", text).strip() or type(exc).__name__


def verify_hint(host: str, port: int, exc: BaseException, tls: ClientTLS) -> str:
    """One sentence for a failed TLS exchange with ``host:port``, naming the flag that fixes it."""
    where = f"{host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = str(exc.verify_message or exc.reason or exc)
        if "hostname mismatch" in why.lower() or "ip address mismatch" in why.lower():
            return (f"TLS with {where}: certificate verify failed: {why}: reach the wallet by a name its "
                    "certificate was issued for")
        fix = ("check that --ca-bundle holds the CA that signed the wallet's certificate" if tls.ca_bundle else
               "pass --ca-bundle FILE with the CA that signed the wallet's certificate")
        return f"TLS with {where}: certificate verify failed: {why}: {fix} (or, for a sandbox only, --insecure)"
    reason = str(getattr(exc, "reason", "") or "").upper()
    text = str(exc).upper()
    if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER_FAILURE" in reason or "PACKET_LENGTH_TOO_LONG" in reason:
        return f"{where} does not speak TLS ({_reason(exc)}): is the wallet's URL http:// rather than https://?"
    if "CERTIFICATE_REQUIRED" in reason or "CERTIFICATE_REQUIRED" in text or (
            not tls.client_cert and "HANDSHAKE_FAILURE" in reason):
        return (f"TLS with {where}: the wallet asks for a client certificate (mutual TLS): pass --client-cert FILE "
                "--client-key FILE")
    if "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason or "CERTIFICATE_UNKNOWN" in reason:
        return (f"TLS with {where}: the wallet refused croupier's client certificate ({_reason(exc)}): is "
                "--client-cert signed by a CA the wallet trusts?")
    if isinstance(exc, (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return closed_hint(host, port, tls, _reason(exc))
    return f"TLS with {where} failed: {_reason(exc)}"


def closed_hint(host: str, port: int, tls: ClientTLS, why: str = "") -> str:
    """A wallet that closed the connection after the handshake without answering: most likely it wants a
    client certificate (or refused the one shown), which some servers say with an alert and others only so."""
    said = f" ({why})" if why else ""
    if tls.client_cert:
        return (f"TLS with {host}:{port}: the wallet closed the connection without answering{said}: did it refuse "
                "croupier's client certificate (--client-cert)? Is it signed by a CA the wallet trusts?")
    return (f"TLS with {host}:{port}: the wallet closed the connection without answering{said}: if it asks for "
            "a client certificate (mutual TLS), pass --client-cert FILE --client-key FILE")


def handshake_problem(host: str, port: int, path: str, tls: ClientTLS, ctx: ssl.SSLContext,
                      timeout: float = 3.0) -> str | None:
    """Why croupier cannot talk HTTPS to ``host:port`` (the handshake, then the first bytes of an answer to a
    ``HEAD`` of ``path``: a wallet that wants a client certificate says so only then); None if it can, or if
    the wallet is merely slow (the calls' own timeouts judge that).  Blocking: run it in a thread from a loop."""
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None  # not a TLS matter: the callers report an unreachable wallet themselves
    try:
        with ctx.wrap_socket(raw, server_hostname=host) as conn:
            name = f"[{host}]" if ":" in host else host  # an IPv6 address is bracketed in a Host header
            conn.sendall(f"HEAD {path or '/'} HTTP/1.1\r\nHost: {name}:{port}\r\nConnection: close\r\n\r\n".encode())
            if not conn.recv(1):  # closed without a word: how asyncio's servers turn a client certificate down
                return closed_hint(host, port, tls)
    except TimeoutError:
        return None
    except (ssl.SSLError, ConnectionResetError) as exc:
        return verify_hint(host, port, exc, tls)
    except OSError:
        return None
    finally:
        raw.close()
    return None

"""Signatures: what is signed verifies; any change, a stale clock or a missing header does not."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.protocol.signing import SignatureError, sign, verify

NOW = 1_800_000_000


@given(st.binary(max_size=512), st.integers(min_value=-300, max_value=300))
def test_signed_bodies_verify_within_the_window(body: bytes, skew: int) -> None:
    header = sign("s3cret", body, NOW + skew)
    assert verify("s3cret", header, body, NOW) == NOW + skew


@given(st.binary(max_size=150), st.binary(max_size=300), st.integers(min_value=0, max_value=10**12))
def test_the_signature_is_hmac_sha256_of_t_dot_body(secret: bytes, body: bytes, t: int) -> None:
    """Any HMAC library on the wallet's side computes the same value, for keys shorter and longer than
    SHA-256's block. PROTOCOL.md: "header `X-Signature: t=<unix seconds>,v1=<hex>` where hex is
    HMAC-SHA256 over the bytes `<t>.<raw body>` with the shared secret"."""
    expected = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert sign(secret, body, t) == f"t={t},v1={expected}"


@given(st.binary(max_size=256), st.binary(min_size=1, max_size=8))
def test_any_change_of_body_is_refused(body: bytes, extra: bytes) -> None:
    header = sign("s3cret", body, NOW)
    with pytest.raises(SignatureError):
        verify("s3cret", header, body + extra, NOW)


@pytest.mark.parametrize("skew", [301, -301, 10_000])
def test_stale_or_future_timestamps_are_refused(skew: int) -> None:
    with pytest.raises(SignatureError):
        verify("s3cret", sign("s3cret", b"{}", NOW + skew), b"{}", NOW)


@pytest.mark.parametrize(
    "header",
    [None, "", "garbage", "t=abc,v1=00", "v1=00", "t=1800000000", "t=1800000000,v1=zz",
     "t=1800000000,t=1800000001,v1=00", "t=-1800000000,v1=00", "t=１８,v1=00"],
)
def test_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify("s3cret", header, b"{}", NOW)


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(SignatureError):
        verify("other", sign("s3cret", b"{}", NOW), b"{}", NOW)

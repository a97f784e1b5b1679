"""RSA keys for dialects that sign with a private key (the JSON ``/user/info`` shape).

Two ways to key such a dialect, both through the one ``secret`` string every
driver already passes around (so ``--secret`` and "a wrong secret" keep working):

* ``PRIVATE.pem,PEER_PUBLIC.pem`` - two existing PEM files: our private key and the
  counter-party's public key, as exchanged at onboarding with a real wallet;
* anything else - development keys: the provider's pair *derived deterministically
  from the secret*, the wallet's from a public constant.  Both sides of a local test
  derive the same keys from the same secret, and a different secret gives the
  provider a different key (a signature the wallet refuses).  This is a convenience
  for tests and the reference wallet, not a way to keep a key secret.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]


def _probable_prime(n: int, rng: random.Random) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(24):
        a = rng.randrange(2, n - 2)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random, e: int) -> int:
    while True:
        n = rng.getrandbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if (n - 1) % e and _probable_prime(n, rng):
            return n


@lru_cache(maxsize=16)
def derived_private_key(secret: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """The development key pair of ``secret`` (same secret, same key; see the module doc)."""
    seed = int.from_bytes(hashlib.sha256(b"croupier-rsa-dev-key\x00" + secret.encode()).digest(), "big")
    rng = random.Random(seed)
    e = 65537
    while True:
        p, q = _prime(bits // 2, rng, e), _prime(bits // 2, rng, e)
        if p != q and (p * q).bit_length() == bits:
            break
    if p < q:
        p, q = q, p
    n = p * q
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p, q=q, d=d, dmp1=d % (p - 1), dmq1=d % (q - 1), iqmp=pow(q, -1, p),
        public_numbers=rsa.RSAPublicNumbers(e, n),
    )
    return numbers.private_key()


@dataclass(frozen=True)
class RsaKeys:
    """Our private key (to sign) and the counter-party's public key (to verify)."""

    private: rsa.RSAPrivateKey
    peer: rsa.RSAPublicKey

    def sign(self, body: bytes) -> str:
        """Base64 RSA-SHA256 (PKCS#1 v1.5) of ``body``."""
        return base64.b64encode(self.private.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()

    def verify(self, signature: str | None, body: bytes) -> bool:
        if not signature:
            return False
        try:
            raw = base64.b64decode(signature.encode("ascii"), validate=True)
            self.peer.verify(raw, body, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError, UnicodeEncodeError):
            return False
        return True

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class KeyRing:
    """The keys of each side: the provider signs requests, the wallet signs answers."""

    provider: RsaKeys
    wallet: RsaKeys


DEV_WALLET_KEY_SEED = "croupier-dev-wallet"
"""The development wallet's key pair is derived from this public constant: in development the
secret authenticates the *provider*; a provider with a wrong secret still verifies the
wallet's answers (as a real provider holding the wallet's public key would)."""


@lru_cache(maxsize=16)
def keys_for(secret: str) -> KeyRing:
    """Keys from ``PRIVATE.pem,PEER_PUBLIC.pem`` files (one side's own), or the development pairs."""
    priv_path, sep, peer_path = secret.partition(",")
    if sep and os.path.isfile(priv_path) and os.path.isfile(peer_path):
        with open(priv_path, "rb") as f:
            private = serialization.load_pem_private_key(f.read(), password=None)
        with open(peer_path, "rb") as f:
            peer = serialization.load_pem_public_key(f.read())
        if not isinstance(private, rsa.RSAPrivateKey) or not isinstance(peer, rsa.RSAPublicKey):
            raise ValueError("the RSA dialect needs an RSA private key and an RSA public key")
        mine = RsaKeys(private, peer)
        return KeyRing(mine, mine)
    provider = derived_private_key(secret)
    wallet = derived_private_key(DEV_WALLET_KEY_SEED)
    return KeyRing(RsaKeys(provider, wallet.public_key()), RsaKeys(wallet, provider.public_key()))

"""SM2 signatures (SM2 数字签名, GB/T 32918.2) for audit checkpoints and other signed records.

``cryptography`` has no SM2, so the elliptic-curve arithmetic comes from ``gmssl`` (pure Python, slow:
tens of milliseconds per signature — fine for periodic checkpoints, not for every row). Around it this
module does what gmssl leaves to its caller:

- the per-signature secret ``k`` and private keys come from :mod:`secrets` (gmssl's own ``random_hex``
  uses :mod:`random`, which is predictable and would leak the private key);
- the message digest ``e = SM3(Z_A || M)`` is computed with OpenSSL's SM3 (through ``cryptography``),
  with the signer's distinguishing identifier (default ``1234567812345678``, as GM/T 0009 and OpenSSL);
- public keys are checked to lie on the curve, and ``r``, ``s`` to lie in ``[1, n-1]``;
- gmssl's ``public_key.lstrip("04")`` (which also strips leading ``0``/``4`` digits of ``x``) is bypassed.

Keys are hex text: the private key is 64 hex digits; the public key is ``04 || x || y`` (130 hex digits,
uncompressed SEC 1; 128 digits without ``04`` are accepted too). Signatures are ``r || s``, 128 hex digits.
Pure-Python arithmetic is not constant-time; keep signing keys on a host where timing is not observable.
"""

from __future__ import annotations

import secrets
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from gmssl import sm2 as _gm  # type: ignore[import-untyped]

__all__ = ["DEFAULT_USER_ID", "sm2_generate_keypair", "sm2_public_key", "sm2_sign", "sm2_verify"]

_CURVE = _gm.default_ecc_table
P = int(_CURVE["p"], 16)
N = int(_CURVE["n"], 16)
A = int(_CURVE["a"], 16)
B = int(_CURVE["b"], 16)
G = _CURVE["g"]

DEFAULT_USER_ID = b"1234567812345678"


def _sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def _engine(private_hex: str, public_xy: str) -> _gm.CryptSM2:
    eng = _gm.CryptSM2(private_key=private_hex, public_key="00")
    eng.public_key = public_xy  # bypass gmssl's lstrip("04")
    return eng


def _parse_private(private_hex: str) -> int:
    try:
        d = int(private_hex, 16)
    except (TypeError, ValueError):
        raise ValueError("SM2 private key must be 64 hex digits") from None
    if len(private_hex) != 64 or not 1 <= d <= N - 2:
        raise ValueError("SM2 private key must be 64 hex digits in [1, n-2]")
    return d


def _parse_public(public_hex: str) -> str:
    """``x || y`` (128 hex digits), after checking the point is on the curve."""
    if not isinstance(public_hex, str):
        raise ValueError("SM2 public key must be hex text")
    text = public_hex.lower()
    if len(text) == 130 and text.startswith("04"):
        text = text[2:]
    if len(text) != 128:
        raise ValueError("SM2 public key must be 04 || x || y (130 hex digits) or x || y (128)")
    try:
        x, y = int(text[:64], 16), int(text[64:], 16)
    except ValueError:
        raise ValueError("SM2 public key must be hex text") from None
    if not (0 <= x < P and 0 <= y < P) or (y * y - (x * x * x + A * x + B)) % P != 0:
        raise ValueError("SM2 public key is not a point on the SM2 curve")
    return text


@lru_cache(maxsize=64)
def sm2_public_key(private_hex: str) -> str:
    """The public key (``04 || x || y``) of a private key."""
    d = _parse_private(private_hex)
    xy: str = _engine(private_hex, "00")._kg(d, G)
    return "04" + xy


def sm2_generate_keypair() -> tuple[str, str]:
    """A new ``(private_hex, public_hex)`` pair from the OS CSPRNG."""
    d = secrets.randbelow(N - 2) + 1
    private_hex = f"{d:064x}"
    return private_hex, sm2_public_key(private_hex)


def _digest(public_xy: str, data: bytes, user_id: bytes) -> bytes:
    if len(user_id) * 8 > 0xFFFF:
        raise ValueError("SM2 user id too long")
    z = _sm3(
        (len(user_id) * 8).to_bytes(2, "big") + user_id
        + bytes.fromhex(_CURVE["a"] + _CURVE["b"] + G + public_xy)
    )
    return _sm3(z + data)


def _sign_with_k(private_hex: str, data: bytes, k: int, user_id: bytes) -> str | None:
    pub = sm2_public_key(private_hex)[2:]
    sig: str | None = _engine(private_hex, pub).sign(_digest(pub, data, user_id), f"{k:064x}")
    return sig


def sm2_sign(private_hex: str, data: bytes, *, user_id: bytes = DEFAULT_USER_ID) -> str:
    """Sign ``data`` (SM2 with SM3, GB/T 32918.2): ``r || s`` as 128 hex digits."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data to sign is bytes, not {type(data).__name__}")
    _parse_private(private_hex)
    while True:  # a retry happens with probability ~2^-256 (r = 0, r + k = n or s = 0)
        sig = _sign_with_k(private_hex.lower(), bytes(data), secrets.randbelow(N - 1) + 1, user_id)
        if sig is not None:
            return sig


def sm2_verify(public_hex: str, data: bytes, signature: str, *, user_id: bytes = DEFAULT_USER_ID) -> bool:
    """Whether ``signature`` is a valid SM2 signature of ``data`` by ``public_hex``.

    A wrong, malformed or truncated signature gives ``False``; a malformed *public key* raises
    ``ValueError`` (that is a configuration error, not a forgery).
    """
    pub = _parse_public(public_hex)
    if not isinstance(signature, str) or len(signature) != 128:
        return False
    try:
        r, s = int(signature[:64], 16), int(signature[64:], 16)
    except ValueError:
        return False
    if not (1 <= r < N and 1 <= s < N) or (r + s) % N == 0:
        return False
    return bool(_engine("00", pub).verify(f"{r:064x}{s:064x}", _digest(pub, bytes(data), user_id)))

"""RFC 3161 timestamps for checkpoints (可信时间戳): a timestamp authority countersigns each witnessed checkpoint.

Configured with ``YINSI_AUDIT_TSA_URL`` (the TSA's HTTP endpoint) and ``YINSI_AUDIT_TSA_ROOTS`` (a PEM file
with the certificate(s) to trust: the TSA's root, and intermediates if the TSA does not send them). After
a checkpoint is signed, the log asks the TSA for a timestamp token over the checkpoint's signed bytes
(SHA-256 message imprint, with a nonce), checks the answer, and stores the token with the checkpoint in
the witness. ``verify`` checks every stored token against the checkpoint still in the database: a
checkpoint rewritten later no longer matches its token, and the token's time shows when the checkpoint
existed — evidence from a third party that neither the database owner nor the key holder controls.

Requests and responses are built and checked by ``rfc3161-client`` (maintained by Trail of Bits, used by
sigstore); the HTTP request is a plain POST (``application/timestamp-query``) through ``httpx``. A TSA
that cannot be reached is logged and the checkpoint stands without a token (``verify`` then shows none).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from yinsi.audit.errors import AuditError

TSA_URL_ENV = "YINSI_AUDIT_TSA_URL"
TSA_ROOTS_ENV = "YINSI_AUDIT_TSA_ROOTS"

#: ``post(url, request DER) -> response DER``; the default uses httpx.
Post = Callable[[str, bytes], bytes]


def _http_post(url: str, body: bytes, timeout: float) -> bytes:
    try:
        import httpx
    except ImportError:
        raise AuditError("访问时间戳服务需要 httpx：pip install httpx") from None

    try:
        response = httpx.post(url, content=body, timeout=timeout,
                              headers={"Content-Type": "application/timestamp-query"})
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise AuditError(f"时间戳服务 {url} 无法访问：{type(exc).__name__}") from None
    return response.content


class TimestampAuthority:
    """One RFC 3161 TSA, trusted through ``roots`` (``cryptography`` certificates)."""

    def __init__(self, url: str, roots: Sequence[object], *, intermediates: Sequence[object] = (),
                 post: Post | None = None, timeout: float = 10.0) -> None:
        if not roots:
            raise AuditError(f"时间戳服务需要受信任的根证书（环境变量 {TSA_ROOTS_ENV}）")
        self.url = url
        self.roots = list(roots)
        self.intermediates = list(intermediates)
        self._post = post or (lambda u, body: _http_post(u, body, timeout))

    def _verifier(self, nonce: int | None = None) -> object:
        from rfc3161_client import VerifierBuilder

        builder = VerifierBuilder(nonce=nonce)
        for root in self.roots:
            builder = builder.add_root_certificate(root)  # type: ignore[arg-type]
        for cert in self.intermediates:
            builder = builder.add_intermediate_certificate(cert)  # type: ignore[arg-type]
        return builder.build()

    def stamp(self, data: bytes) -> bytes:
        """A checked timestamp token (the TSA's whole response, DER) over ``data``; ``AuditError`` otherwise."""
        from rfc3161_client import HashAlgorithm, TimestampRequestBuilder, decode_timestamp_response
        from rfc3161_client.errors import VerificationError

        request = TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256).build()
        raw = self._post(self.url, request.as_bytes())
        try:
            response = decode_timestamp_response(raw)
            self._verifier(request.nonce).verify(response, hashlib.sha256(data).digest())  # type: ignore[attr-defined]
        except (VerificationError, ValueError) as exc:
            raise AuditError(f"时间戳服务 {self.url} 的应答无效：{exc}") from None
        return raw

    def check(self, token: bytes, data: bytes) -> datetime:
        """The time the TSA vouches ``data`` existed; ``AuditError`` if the token is not a valid timestamp of it."""
        from rfc3161_client import decode_timestamp_response
        from rfc3161_client.errors import VerificationError

        try:
            response = decode_timestamp_response(token)
            self._verifier().verify(response, hashlib.sha256(data).digest())  # type: ignore[attr-defined]
        except (VerificationError, ValueError) as exc:
            raise AuditError(f"时间戳无效：{exc}") from None
        gen_time: datetime = response.tst_info.gen_time
        return gen_time


def tsa_from_env() -> TimestampAuthority | None:
    """The TSA configured by ``YINSI_AUDIT_TSA_URL`` and ``YINSI_AUDIT_TSA_ROOTS``, or ``None``."""
    url = os.environ.get(TSA_URL_ENV, "").strip()
    if not url:
        return None
    roots_file = os.environ.get(TSA_ROOTS_ENV, "").strip()
    if not roots_file:
        raise AuditError(f"设置了 {TSA_URL_ENV}，但没有设置受信任的根证书文件 {TSA_ROOTS_ENV}")
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(Path(roots_file).expanduser().read_bytes())
    except (OSError, ValueError) as exc:
        raise AuditError(f"时间戳服务根证书文件 {roots_file} 无法读取：{exc}") from None
    return TimestampAuthority(url, certs)

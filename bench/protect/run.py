"""Micro-benchmarks of field encryption, blind indexes, pseudonyms, SM2, Argon2id and key rotation.

``python -m bench.protect.run [--rows 20000]`` prints a Markdown table (one core, this machine); the figures
in docs/benchmarks/protect.md come from it.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from cryptography import __version__ as crypto_version
from cryptography.hazmat.backends.openssl.backend import backend
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, insert

from yinsi.protect.blind_index import compute_blind_index
from yinsi.protect.crypto import Algorithm, DataKey, FieldCipher, MacAlgorithm, generate_key
from yinsi.protect.keys import KeyRing, MasterKey
from yinsi.protect.passwords import hash_one_time_code, hash_password
from yinsi.protect.pseudonyms import compute_pseudonym
from yinsi.protect.rotation import EncryptedColumn, RotationTarget, rotate_data_key
from yinsi.protect.sm2 import sm2_generate_keypair, sm2_sign, sm2_verify
from yinsi.storage import Tenant, make_engine, make_session_factory, upgrade


class _Keys:
    def __init__(self, key: DataKey) -> None:
        self.key = key

    def active_data_key(self, tenant: str) -> DataKey:
        return self.key

    def data_key(self, tenant: str, version: int) -> DataKey:
        return self.key


def rate(fn: Callable[[], object], seconds: float = 1.0) -> float:
    """Calls per second of ``fn`` over about ``seconds``."""
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            fn()
        n += 50
    return n / elapsed


def bench_rotation(rows: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        with make_session_factory(engine)() as session, session.begin():
            session.add(Tenant(id="t1", name="bench", created_at=datetime.now(UTC)))
        table = Table("app_users", MetaData(), Column("id", Integer, primary_key=True),
                      Column("tenant_id", String(64)), Column("phone", LargeBinary))
        table.create(engine)
        with KeyRing.open(url, MasterKey(os.urandom(32), "bench")) as ring:
            ring.provision("t1")
            cipher = ring.cipher("t1")
            with engine.begin() as conn:
                conn.execute(insert(table), [{"id": i, "tenant_id": "t1",
                                              "phone": cipher.encrypt("app_users.phone", f"138{i:08d}")}
                                             for i in range(rows)])
            start = time.perf_counter()
            rotate_data_key(ring, "t1", [RotationTarget(engine, EncryptedColumn("app_users", "phone"))], batch_size=500)
            elapsed = time.perf_counter() - start
        engine.dispose()
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    results: list[tuple[str, str]] = []
    for alg in Algorithm:
        cipher = FieldCipher("t1", _Keys(DataKey(1, alg, generate_key(alg))))
        token = cipher.encrypt("users.phone", "13800138000")
        enc = rate(partial(cipher.encrypt, "users.phone", "13800138000"))
        dec = rate(partial(cipher.decrypt, "users.phone", token))
        results.append((f"encrypt, {alg.value} (11-digit phone)", f"{enc:,.0f} /s"))
        results.append((f"decrypt, {alg.value}", f"{dec:,.0f} /s"))
    key = os.urandom(32)
    for mac in MacAlgorithm:
        index = rate(partial(compute_blind_index, mac, key, "phone", "+86 138-0013-8000"))
        pseudonym = rate(partial(compute_pseudonym, mac, key, "user-42"))
        results.append((f"blind index, {mac.value} (phone)", f"{index:,.0f} /s"))
        results.append((f"pseudonym, {mac.value}", f"{pseudonym:,.0f} /s"))
    private, public = sm2_generate_keypair()
    sig = sm2_sign(private, b"checkpoint")
    results.append(("SM2 sign (gmssl, pure Python)", f"{rate(lambda: sm2_sign(private, b'checkpoint'), 2):,.1f} /s"))
    results.append(("SM2 verify (gmssl, pure Python)", f"{rate(lambda: sm2_verify(public, b'checkpoint', sig), 2):,.1f} /s"))
    start = time.perf_counter()
    for _ in range(5):
        hash_password("correct horse battery staple")
    results.append(("Argon2id password hash (t=3, m=64 MiB, p=4)", f"{(time.perf_counter() - start) / 5 * 1000:.0f} ms"))
    start = time.perf_counter()
    for _ in range(10):
        hash_one_time_code("123456")
    results.append(("Argon2id one-time code hash (t=2, m=19 MiB, p=1)", f"{(time.perf_counter() - start) / 10 * 1000:.0f} ms"))
    results.append((f"rotation, SQLite, {args.rows:,} rows, batch 500 (2 passes)", f"{bench_rotation(args.rows):,.0f} rows/s"))
    print(f"Python {platform.python_version()}, cryptography {crypto_version}, {backend.openssl_version_text()}, "
          f"{platform.machine()}\n")
    print("| operation | result |\n|---|---|")
    for name, value in results:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()

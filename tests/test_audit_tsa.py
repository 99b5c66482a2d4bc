"""RFC 3161 timestamps of checkpoints, against a timestamp authority run locally for the test.

The TSA's certificates are made here with ``cryptography`` (a root, and a TSA certificate whose only
extended key usage is timeStamping, critical); the TSA itself is ``openssl ts -reply``, so requests and
responses are real RFC 3161 DER on both sides. No network is used: the log's HTTP POST is replaced by a
call to openssl.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import update

from yinsi.audit import AuditError, AuditLog, FileWitness
from yinsi.audit.store import CHECKPOINTS
from yinsi.audit.tsa import TimestampAuthority
from yinsi.storage import make_engine, make_session_factory, upgrade

pytestmark = [pytest.mark.usefixtures("isolated_env"),
              pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command as a local TSA")]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class LocalTsa:
    """A TSA on this machine: ``openssl ts -reply`` with certificates made by ``cryptography``."""

    def __init__(self, home: Path) -> None:
        now = dt.datetime.now(dt.UTC)
        root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = (x509.CertificateBuilder().subject_name(_name("Yinsi Test Root")).issuer_name(_name("Yinsi Test Root"))
                     .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                                  crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                     .sign(root_key, hashes.SHA256()))
        tsa_key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (x509.CertificateBuilder().subject_name(_name("Yinsi Test TSA")).issuer_name(self.root.subject)
                     .public_key(tsa_key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                     .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                                  crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
                     .sign(root_key, hashes.SHA256()))
        self.home = home
        home.mkdir()
        _pem(home / "tsa.pem", self.cert.public_bytes(serialization.Encoding.PEM))
        _pem(home / "tsa.key", tsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
        (home / "serial").write_text("01\n")
        (home / "tsa.cnf").write_text(f"""
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {home}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
""")
        self.requests = 0

    def post(self, url: str, body: bytes) -> bytes:
        self.requests += 1
        (self.home / "req.tsq").write_bytes(body)
        subprocess.run(["openssl", "ts", "-reply", "-config", str(self.home / "tsa.cnf"), "-queryfile",
                        str(self.home / "req.tsq"), "-out", str(self.home / "resp.tsr")], check=True,
                       capture_output=True)
        return (self.home / "resp.tsr").read_bytes()


@pytest.fixture
def tsa(tmp_path: Path) -> LocalTsa:
    return LocalTsa(tmp_path / "tsa")


@pytest.fixture
def log_and_witness(tmp_path: Path, tsa: LocalTsa) -> Iterator[tuple[AuditLog, Path]]:
    url = f"sqlite:///{(tmp_path / 'audit.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    witness = tmp_path / "witness"
    witness.mkdir()
    authority = TimestampAuthority("http://tsa.invalid/", [tsa.root], post=tsa.post)
    yield AuditLog(make_session_factory(engine), checkpoint_every=3, checkpoint_seconds=0,
                   witness=FileWitness(witness, directory=True), tsa=authority), witness
    engine.dispose()


def test_each_witnessed_checkpoint_carries_a_checked_timestamp(log_and_witness: tuple[AuditLog, Path],
                                                               tsa: LocalTsa) -> None:
    log, witness = log_and_witness
    for i in range(3):
        log.append("acme", "staff-1", "other", details={"i": i})
    assert tsa.requests == 1
    record = next(iter(json.loads((witness / "yinsi-audit-witness.json").read_text())["chains"].values()))
    token = base64.b64decode(record["timestamp"])
    cp = log.checkpoints("acme")[0]
    from yinsi.audit.model import canonical_json

    assert log.tsa is not None
    when = log.tsa.check(token, canonical_json(cp.payload()))
    assert abs((when - dt.datetime.now(dt.UTC)).total_seconds()) < 300
    assert log.verify("acme").ok


def test_a_checkpoint_rewritten_after_its_timestamp_is_detected(log_and_witness: tuple[AuditLog, Path]) -> None:
    log, _ = log_and_witness
    for _ in range(3):
        log.append("acme", "staff-1", "other")
    engine = log.session_factory.kw["bind"]
    with engine.begin() as conn:  # the checkpoint's time moved: its hash and the token no longer agree
        conn.execute(update(CHECKPOINTS).values(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
    problems = {p.kind for p in log.verify("acme").problems}
    assert "bad_signature" in problems and "checkpoint_mismatch" in problems


def test_a_token_from_another_tsa_or_over_other_data_is_refused(tsa: LocalTsa, tmp_path: Path) -> None:
    authority = TimestampAuthority("http://tsa.invalid/", [tsa.root], post=tsa.post)
    token = authority.stamp(b"checkpoint bytes")
    assert authority.check(token, b"checkpoint bytes")
    with pytest.raises(AuditError):
        authority.check(token, b"other bytes")
    stranger = LocalTsa(tmp_path / "other-tsa")
    with pytest.raises(AuditError):
        TimestampAuthority("http://tsa.invalid/", [stranger.root], post=tsa.post).stamp(b"checkpoint bytes")


def test_a_witnessed_token_that_does_not_match_its_checkpoint_is_reported(log_and_witness: tuple[AuditLog, Path]) -> None:
    log, witness = log_and_witness
    for _ in range(3):
        log.append("acme", "staff-1", "other")
    assert log.tsa is not None
    path = witness / "yinsi-audit-witness.json"
    data = json.loads(path.read_text())
    for rec in data["chains"].values():
        rec["timestamp"] = base64.b64encode(log.tsa.stamp(b"some other checkpoint")).decode()
    path.write_text(json.dumps(data))
    result = log.verify("acme")
    assert not result.ok and [p.kind for p in result.problems] == ["timestamp_invalid"]

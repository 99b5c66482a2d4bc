"""Field encryption and signatures, without a database: formats, algorithms, loud failure."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from yinsi.protect.crypto import (
    HEADER_LEN,
    MAGIC,
    Algorithm,
    DataKey,
    FieldCipher,
    Header,
    algorithm_support,
    generate_key,
    is_token,
    open_sealed,
    read_header,
    seal,
    sm4_gcm_supported,
)
from yinsi.protect.errors import InvalidCiphertext, KeyNotFound
from yinsi.protect.sm2 import _sign_with_k, sm2_generate_keypair, sm2_public_key, sm2_sign, sm2_verify


class StaticKeys:
    """A key source holding fixed keys in memory (the real one is the KeyRing)."""

    def __init__(self, *keys: DataKey) -> None:
        self.keys = {k.version: k for k in keys}
        self.active = max(self.keys)

    def active_data_key(self, tenant: str) -> DataKey:
        return self.keys[self.active]

    def data_key(self, tenant: str, version: int) -> DataKey:
        if version not in self.keys:
            raise KeyNotFound(f"no version {version}")
        return self.keys[version]


def _cipher(alg: Algorithm, tenant: str = "t1", version: int = 1) -> FieldCipher:
    return FieldCipher(tenant, StaticKeys(DataKey(version, alg, generate_key(alg))))


ALGORITHMS = [pytest.param(a, id=a.value) for a in Algorithm]


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_round_trip_of_chinese_text_and_empty_string(alg: Algorithm) -> None:
    cipher = _cipher(alg)
    for text in ("13800138000", "张三 𠮷野家 北京市朝阳区", ""):
        token = cipher.encrypt("users.phone", text)
        assert cipher.decrypt("users.phone", token) == text
        assert text.encode() not in token or not text


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_header_names_format_algorithm_and_key_version(alg: Algorithm) -> None:
    cipher = _cipher(alg, version=70000)
    token = cipher.encrypt("users.phone", "13800138000")
    assert token[:3] == MAGIC == b"YS1"
    assert read_header(token) == Header(alg, 70000)
    assert token[3] == {Algorithm.AES_256_GCM: 1, Algorithm.SM4_GCM: 2, Algorithm.SM4_CBC_HMAC_SM3: 3}[alg]
    assert int.from_bytes(token[4:8], "big") == 70000
    nonce = 16 if alg is Algorithm.SM4_CBC_HMAC_SM3 else 12
    pad = 16 - len("13800138000") % 16 if alg is Algorithm.SM4_CBC_HMAC_SM3 else 0
    assert len(token) == HEADER_LEN + nonce + len("13800138000") + pad + 16


def test_same_plaintext_encrypts_differently_each_time() -> None:
    cipher = _cipher(Algorithm.AES_256_GCM)
    assert cipher.encrypt("f", "x") != cipher.encrypt("f", "x")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_every_tampered_byte_fails_loudly(alg: Algorithm) -> None:
    cipher = _cipher(alg)
    token = cipher.encrypt("users.phone", "13800138000")
    for i in range(len(token)):
        bad = bytearray(token)
        bad[i] ^= 0x01
        with pytest.raises(InvalidCiphertext):
            cipher.decrypt("users.phone", bytes(bad))


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_truncated_ciphertext_fails_loudly(alg: Algorithm) -> None:
    cipher = _cipher(alg)
    token = cipher.encrypt("users.phone", "13800138000")
    for cut in (0, 3, HEADER_LEN, HEADER_LEN + 5, len(token) - 1):
        with pytest.raises(InvalidCiphertext):
            cipher.decrypt("users.phone", token[:cut])


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_a_ciphertext_cannot_move_to_another_tenant_or_field(alg: Algorithm) -> None:
    keys = StaticKeys(DataKey(1, alg, generate_key(alg)))
    mine, theirs = FieldCipher("t1", keys), FieldCipher("t2", keys)  # same key even: the binding holds
    token = mine.encrypt("users.phone", "13800138000")
    with pytest.raises(InvalidCiphertext, match="t2"):
        theirs.decrypt("users.phone", token)
    with pytest.raises(InvalidCiphertext, match=r"users\.email"):
        mine.decrypt("users.email", token)


def test_wrong_key_fails_loudly_and_names_the_version() -> None:
    token = _cipher(Algorithm.AES_256_GCM).encrypt("f", "secret")
    with pytest.raises(InvalidCiphertext, match="密钥版本 1"):
        _cipher(Algorithm.AES_256_GCM).decrypt("f", token)


def test_header_algorithm_must_match_the_key() -> None:
    aes = _cipher(Algorithm.AES_256_GCM)
    token = bytearray(aes.encrypt("f", "secret"))
    token[3] = 2  # claims SM4-GCM
    with pytest.raises(InvalidCiphertext, match="算法"):
        aes.decrypt("f", bytes(token))


def test_not_a_token_and_wrong_types() -> None:
    cipher = _cipher(Algorithm.AES_256_GCM)
    with pytest.raises(InvalidCiphertext, match="YS1"):
        cipher.decrypt("f", b"13800138000")
    with pytest.raises(InvalidCiphertext, match="算法编号"):
        read_header(b"YS1\x09\x00\x00\x00\x01" + bytes(40))
    with pytest.raises(TypeError):
        cipher.encrypt("f", b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cipher.decrypt("f", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        cipher.encrypt("", "x")
    assert is_token(cipher.encrypt("f", "x")) and not is_token(b"YS") and not is_token("YS1abcdefgh")


def test_memoryview_tokens_from_drivers_decrypt() -> None:
    cipher = _cipher(Algorithm.AES_256_GCM)
    token = cipher.encrypt("f", "x")
    assert cipher.decrypt("f", memoryview(token)) == "x"


def test_text_tokens_for_varchar_columns() -> None:
    cipher = _cipher(Algorithm.SM4_GCM)
    token = cipher.encrypt_text("users.phone", "13800138000")
    assert token.startswith("WVMx") and "13800138000" not in token
    assert cipher.decrypt_text("users.phone", token) == "13800138000"
    with pytest.raises(InvalidCiphertext, match="base64"):
        cipher.decrypt_text("users.phone", "not base64!")


def test_reencrypt_skips_tokens_already_at_the_active_version() -> None:
    old = DataKey(1, Algorithm.AES_256_GCM, generate_key(Algorithm.AES_256_GCM))
    new = DataKey(2, Algorithm.SM4_GCM, generate_key(Algorithm.SM4_GCM))
    v1 = FieldCipher("t1", StaticKeys(old)).encrypt("f", "13800138000")
    both = FieldCipher("t1", StaticKeys(old, new))
    v2 = both.reencrypt("f", v1)
    assert v2 is not None and read_header(v2) == Header(Algorithm.SM4_GCM, 2)
    assert both.decrypt("f", v2) == "13800138000"
    assert both.reencrypt("f", v2) is None


def test_sm4_gcm_matches_rfc_8998_on_this_machine() -> None:
    """The installed OpenSSL has SM4-GCM and it gives the RFC 8998 A.1 result (docs/protect.md says so)."""
    assert sm4_gcm_supported()
    assert all(algorithm_support().values())


def test_sm4_cbc_hmac_sm3_rejects_a_bad_tag_before_decrypting() -> None:
    key = generate_key(Algorithm.SM4_CBC_HMAC_SM3)
    sealed = seal(Algorithm.SM4_CBC_HMAC_SM3, key, b"hello", b"aad")
    assert open_sealed(Algorithm.SM4_CBC_HMAC_SM3, key, sealed, b"aad") == b"hello"
    with pytest.raises(InvalidCiphertext):
        open_sealed(Algorithm.SM4_CBC_HMAC_SM3, key, sealed, b"other aad")
    with pytest.raises(ValueError):
        seal(Algorithm.SM4_GCM, key, b"x", b"")  # 32-byte key for a 16-byte cipher


# --- SM2 --------------------------------------------------------------------------------------------

# GM/T 0003.5-2012 appendix A example (recommended curve, ID 1234567812345678, message "message digest").
KAT_D = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"
KAT_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
KAT_PUB = ("04" "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
           "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13")
KAT_SIG = ("f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
           "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa")


def test_sm2_known_answer() -> None:
    assert sm2_public_key(KAT_D) == KAT_PUB
    assert _sign_with_k(KAT_D, b"message digest", KAT_K, b"1234567812345678") == KAT_SIG
    assert sm2_verify(KAT_PUB, b"message digest", KAT_SIG)
    assert sm2_verify(KAT_PUB[2:], b"message digest", KAT_SIG)  # without the 04 prefix


def test_sm2_sign_and_verify() -> None:
    private, public = sm2_generate_keypair()
    assert len(private) == 64 and len(public) == 130 and public.startswith("04")
    sig = sm2_sign(private, b"checkpoint 42")
    assert len(sig) == 128
    assert sm2_verify(public, b"checkpoint 42", sig)
    assert sm2_sign(private, b"checkpoint 42") != sig  # a fresh k every time
    assert not sm2_verify(public, b"checkpoint 43", sig)
    assert not sm2_verify(sm2_generate_keypair()[1], b"checkpoint 42", sig)
    assert not sm2_verify(public, b"checkpoint 42", sig[:-2] + ("00" if sig[-2:] != "00" else "01"))
    assert not sm2_verify(public, b"checkpoint 42", "zz" * 64)
    assert not sm2_verify(public, b"checkpoint 42", "00" * 64)
    assert not sm2_verify(public, b"checkpoint 42", sig[:100])
    assert not sm2_verify(public, b"checkpoint 42", sig, user_id=b"another signer")


def test_sm2_refuses_bad_keys() -> None:
    with pytest.raises(ValueError, match="curve"):
        sm2_verify("04" + "11" * 64, b"x", "11" * 64)
    with pytest.raises(ValueError):
        sm2_sign("00" * 32, b"x")
    with pytest.raises(ValueError):
        sm2_sign("not hex", b"x")
    with pytest.raises(TypeError):
        sm2_sign(KAT_D, "text")  # type: ignore[arg-type]


def _der_signature(sig: str) -> bytes:
    def integer(x: int) -> bytes:
        raw = x.to_bytes(32, "big").lstrip(b"\0") or b"\0"
        raw = b"\0" + raw if raw[0] & 0x80 else raw
        return b"\x02" + bytes([len(raw)]) + raw

    body = integer(int(sig[:64], 16)) + integer(int(sig[64:], 16))
    return b"\x30" + bytes([len(body)]) + body


def _openssl_sm2() -> str:
    exe = shutil.which("openssl")
    if exe is None:
        pytest.skip("没有 openssl 命令")
    probe = subprocess.run([exe, "ecparam", "-list_curves"], capture_output=True, text=True)
    if "SM2" not in probe.stdout:
        pytest.skip("openssl 命令不支持 SM2")
    return exe


def test_sm2_signatures_interoperate_with_openssl(tmp_path: Path) -> None:
    openssl = _openssl_sm2()
    msg = tmp_path / "msg"
    msg.write_bytes(b"yinsi audit checkpoint")
    distid = ["-pkeyopt", "distid:1234567812345678"]
    # Yinsi signs, OpenSSL verifies.
    private, public = sm2_generate_keypair()
    spki = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200") + bytes.fromhex(public)
    pem = tmp_path / "pub.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(spki).decode() + "-----END PUBLIC KEY-----\n")
    (tmp_path / "sig.der").write_bytes(_der_signature(sm2_sign(private, msg.read_bytes())))
    verified = subprocess.run([openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(pem), "-rawin", "-in", str(msg),
                               "-sigfile", str(tmp_path / "sig.der"), "-digest", "sm3", *distid],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # OpenSSL signs, Yinsi verifies.
    key = tmp_path / "k.pem"
    subprocess.run([openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", str(key)],
                   check=True, capture_output=True)
    der = subprocess.run([openssl, "pkey", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    their_public = der[-65:].hex()
    subprocess.run([openssl, "pkeyutl", "-sign", "-inkey", str(key), "-rawin", "-in", str(msg), "-digest", "sm3",
                    *distid, "-out", str(tmp_path / "osig.der")], check=True, capture_output=True)
    osig = (tmp_path / "osig.der").read_bytes()
    r_len = osig[3]
    r = int.from_bytes(osig[4:4 + r_len], "big")
    s_at = 4 + r_len
    s = int.from_bytes(osig[s_at + 2:s_at + 2 + osig[s_at + 1]], "big")
    assert sm2_verify(their_public, msg.read_bytes(), f"{r:064x}{s:064x}")
    assert not sm2_verify(their_public, b"other", f"{r:064x}{s:064x}")


def test_generated_keys_have_the_right_sizes() -> None:
    assert {a: len(generate_key(a)) for a in Algorithm} == {
        Algorithm.AES_256_GCM: 32, Algorithm.SM4_GCM: 16, Algorithm.SM4_CBC_HMAC_SM3: 32}
    assert generate_key(Algorithm.AES_256_GCM) != generate_key(Algorithm.AES_256_GCM)

"""Check Yinsi's audit proofs without Yinsi (独立的证明校验): this file needs only Python's standard library.

Copy it anywhere (it imports nothing from Yinsi) and feed it the JSON printed by ``yinsi audit prove``::

    import json, proofcheck
    proof = json.load(open("proof.json"))
    proofcheck.check(proof)                     # True or False
    proofcheck.check(proof, trusted_root=...)   # and the root must be the one you kept

- an **inclusion proof** (``yinsi audit prove TENANT --entry N``) shows that entry N, whose fields are in the
  proof, is leaf N-1 of the Merkle tree whose root a signed checkpoint names (RFC 9162 §2.1.3);
- a **consistency proof** (``--from-size A --to-size B``) shows that the tree of the first B entries extends
  the tree of the first A entries: nothing among entries 1..A was changed, removed or reordered since the
  checkpoint of size A was made (RFC 9162 §2.1.4).

Leaves are ``H(0x00 || entry_hash)``, nodes ``H(0x01 || left || right)``; an entry's hash is the hash of its
canonical JSON (keys sorted, no whitespace, UTF-8). ``H`` is SHA-256, or SM3 where the local OpenSSL has it.

What this does **not** check is who signed the checkpoint: the proof carries the checkpoint with its
signature and key id, to be verified with the signer's public key (Ed25519 or SM2) by any tool that has
those algorithms. What makes a proof meaningful is a root you obtained yourself earlier — a checkpoint
kept off the host, or one read from the witness store — passed as ``trusted_root``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

INCLUSION_TYPE = "yinsi.audit.inclusion-proof/1"
CONSISTENCY_TYPE = "yinsi.audit.consistency-proof/1"


def _hasher(alg: str) -> Any:
    if alg == "sha256":
        return lambda data: hashlib.sha256(data).digest()
    if alg == "sm3":
        try:
            hashlib.new("sm3")
        except ValueError:  # pragma: no cover - depends on the local OpenSSL
            raise ValueError("this Python's OpenSSL has no SM3; check SM3 chains with a tool that has it") from None
        return lambda data: hashlib.new("sm3", data).digest()
    raise ValueError(f"unknown hash algorithm {alg!r}")


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _node(h: Any, left: bytes, right: bytes) -> bytes:
    return bytes(h(b"\x01" + left + right))


def _hex(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) != 64:
        raise ValueError("not a 32-byte hash in hex")
    return bytes.fromhex(value)


def inclusion_ok(h: Any, leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(h, p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(h, r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_ok(h: Any, first_size: int, second_size: int, path: list[bytes], first_root: bytes,
                   second_root: bytes) -> bool:
    """RFC 9162 §2.1.4.2."""
    if not 1 <= first_size <= second_size:
        return False
    if first_size == second_size:
        return not path and first_root == second_root
    path = list(path)
    if first_size & (first_size - 1) == 0:
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(h, c, fr), _node(h, c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(h, sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def _checkpoint_ok(h: Any, cp: Any, size: int, root: str) -> bool:
    """A checkpoint attached to a proof must name the same size and root, and hash to its checkpoint_hash."""
    if cp is None:
        return True
    if not isinstance(cp, dict) or cp.get("upto_seq") != size or cp.get("root") != root:
        return False
    payload = {k: v for k, v in cp.items() if k not in ("signature", "checkpoint_hash", "created")}
    return bool(h(canonical_json(payload)).hex() == cp.get("checkpoint_hash"))


def check_inclusion(proof: dict[str, Any], *, trusted_root: str | None = None) -> bool:
    h = _hasher(proof["hash_alg"])
    entry = proof["entry"]
    seq, size, root = int(proof["seq"]), int(proof["tree_size"]), proof["root"]
    if not isinstance(entry, dict) or entry.get("seq") != seq or entry.get("chain") != proof.get("tenant"):
        return False
    entry_hash = h(canonical_json(entry))
    if entry_hash.hex() != proof["entry_hash"]:
        return False
    if trusted_root is not None and trusted_root != root:
        return False
    if not _checkpoint_ok(h, proof.get("checkpoint"), size, root):
        return False
    path = [_hex(p) for p in proof["path"]]
    return inclusion_ok(h, bytes(h(b"\x00" + entry_hash)), seq - 1, size, path, _hex(root))


def check_consistency(proof: dict[str, Any], *, trusted_root: str | None = None) -> bool:
    """``trusted_root``: the root of the *first* (older) tree, as you kept it."""
    h = _hasher(proof["hash_alg"])
    m, n = int(proof["first_size"]), int(proof["second_size"])
    if trusted_root is not None and trusted_root != proof["first_root"]:
        return False
    if not _checkpoint_ok(h, proof.get("first_checkpoint"), m, proof["first_root"]):
        return False
    if not _checkpoint_ok(h, proof.get("second_checkpoint"), n, proof["second_root"]):
        return False
    path = [_hex(p) for p in proof["path"]]
    return consistency_ok(h, m, n, path, _hex(proof["first_root"]), _hex(proof["second_root"]))


def check(proof: dict[str, Any], *, trusted_root: str | None = None) -> bool:
    """Whether ``proof`` (the JSON of ``yinsi audit prove``) holds; malformed proofs are simply false."""
    try:
        if proof.get("type") == INCLUSION_TYPE:
            return check_inclusion(proof, trusted_root=trusted_root)
        if proof.get("type") == CONSISTENCY_TYPE:
            return check_consistency(proof, trusted_root=trusted_root)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return False


if __name__ == "__main__":  # python proofcheck.py proof.json [trusted-root]
    import sys

    with open(sys.argv[1], encoding="utf-8") as f:
        ok = check(json.load(f), trusted_root=sys.argv[2] if len(sys.argv) > 2 else None)
    print("证明有效" if ok else "证明无效")
    sys.exit(0 if ok else 1)

"""Merkle tree hashing as in RFC 6962 / RFC 9162 §2.1, over the entry hashes of a chain.

Domain separation: a leaf is ``H(0x00 || entry_hash)``, an interior node ``H(0x01 || left || right)``,
so a leaf can never be passed off as a node. The tree of n leaves splits at the largest power of two
below n. ``Frontier`` keeps only the roots of the perfect subtrees (at most log2(n) hashes), so a chain's
root is updated in O(1) amortised per appended entry and checkpoints never re-read old entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from yinsi.audit.hashing import HashFn

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(h: HashFn, data: bytes) -> bytes:
    return h(LEAF_PREFIX + data)


def node_hash(h: HashFn, left: bytes, right: bytes) -> bytes:
    return h(NODE_PREFIX + left + right)


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(h: HashFn, leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of already leaf-hashed ``leaves`` (reference definition, recursive)."""
    n = len(leaves)
    if n == 0:
        return h(b"")
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(h, root_of(h, leaves[:k]), root_of(h, leaves[k:]))


@dataclass
class Frontier:
    """The compact range of a tree: roots of its perfect subtrees, largest (leftmost) first."""

    h: HashFn
    size: int = 0
    nodes: list[bytes] = field(default_factory=list)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (already ``leaf_hash``-ed)."""
        self.nodes.append(leaf)
        self.size += 1
        s = self.size
        while s & 1 == 0:  # equal-sized neighbours merge, like carrying in binary addition
            right = self.nodes.pop()
            left = self.nodes.pop()
            self.nodes.append(node_hash(self.h, left, right))
            s >>= 1

    def root(self) -> bytes:
        if not self.nodes:
            return self.h(b"")
        acc = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            acc = node_hash(self.h, node, acc)
        return acc

    def to_text(self) -> str:
        return "".join(n.hex() for n in self.nodes)

    @classmethod
    def from_text(cls, h: HashFn, size: int, text: str) -> Frontier:
        """Rebuild from ``to_text``; the number of nodes must equal the bits set in ``size``."""
        nodes = [bytes.fromhex(text[i:i + 64]) for i in range(0, len(text), 64)]
        if len(nodes) != size.bit_count() or len(text) != 64 * len(nodes):
            raise ValueError(f"merkle frontier does not match tree size {size}")
        return cls(h, size, nodes)


def inclusion_proof(h: HashFn, leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (0-based) in the tree of ``leaves`` (RFC 6962 §2.1.1 PATH)."""
    n = len(leaves)
    if not 0 <= index < n:
        raise IndexError(f"leaf {index} not in a tree of {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(h, leaves[:k], index), root_of(h, leaves[k:])]
    return [*inclusion_proof(h, leaves[k:], index - k), root_of(h, leaves[:k])]


def verify_inclusion(h: HashFn, leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` with ``root``
    (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(h, p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(h, r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_proof(h: HashFn, leaves: Sequence[bytes], first_size: int) -> list[bytes]:
    """The consistency proof between the tree of the first ``first_size`` leaves and the tree of all
    ``leaves`` (RFC 9162 §2.1.4.1 PROOF(m, D[n])). ``1 <= first_size <= len(leaves)``."""
    n = len(leaves)
    if not 1 <= first_size <= n:
        raise IndexError(f"no consistency proof from a tree of {first_size} to a tree of {n}")
    return _subproof(h, first_size, leaves, True)


def _subproof(h: HashFn, m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root_of(h, leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(h, m, leaves[:k], complete), root_of(h, leaves[k:])]
    return [*_subproof(h, m - k, leaves[k:], False), root_of(h, leaves[:k])]


def verify_consistency(h: HashFn, first_size: int, second_size: int, proof: Sequence[bytes], first_root: bytes,
                       second_root: bytes) -> bool:
    """Whether ``proof`` shows that the tree of ``second_size`` leaves with ``second_root`` extends the tree of
    ``first_size`` leaves with ``first_root`` (RFC 9162 §2.1.4.2)."""
    if not 1 <= first_size <= second_size:
        return False
    if first_size == second_size:
        return not proof and first_root == second_root
    path = list(proof)
    if first_size & (first_size - 1) == 0:  # an exact power of two: the first tree is a subtree of the second
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
            fr = node_hash(h, c, fr)
            sr = node_hash(h, c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(h, sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0

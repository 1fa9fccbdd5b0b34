"""RFC 6962 / RFC 9162 Merkle trees: tree heads, inclusion and consistency proofs.

Hashing follows RFC 6962 section 2.1 (a 0x00 prefix for leaves, 0x01 for interior nodes, the
split at the largest power of two below n). Proof verification is the iterative algorithm of
RFC 9162 sections 2.1.3.2 and 2.1.4.2, as used by C2SP tlog and transparency-dev/merkle.
Everything here is iterative, so a 100,000-leaf tree costs one pass of hashing and no deep
recursion.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree head of leaf *data* (not hashes); the empty tree hashes to SHA-256("")."""
    return root_from_leaf_hashes([leaf_hash(data) for data in leaves])


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle tree head of precomputed leaf hashes."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    sha256 = hashlib.sha256
    while len(level) > 1:
        # Pairing level by level and promoting an odd last node unchanged builds exactly the
        # RFC 6962 shape (split at the largest power of two), without recursion.
        paired = [
            sha256(_NODE_PREFIX + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def prefix_roots(leaf_hashes: Sequence[bytes], sizes: Sequence[int]) -> list[bytes]:
    """Tree heads of the prefixes ``leaf_hashes[:n]`` for each ``n`` in ``sizes``.

    Every perfect subtree is hashed once, level by level (n - 1 node hashes in all), and each
    prefix root folds its O(log n) peaks: checking a signed root every N leaves costs one pass.
    """
    count = len(leaf_hashes)
    for n in sizes:
        if not 0 <= n <= count:
            raise ValueError(f"a prefix of {n} leaves is outside a tree of {count}")
    sha256 = hashlib.sha256
    # levels[h][j] is the root of the perfect block of 2**h leaves starting at j * 2**h.
    levels = [leaf_hashes]
    level = leaf_hashes
    while len(level) > 1:
        level = [sha256(_NODE_PREFIX + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        levels.append(level)
    roots = []
    for n in sizes:
        peaks = []
        lo = 0
        for height in reversed(range(n.bit_length())):
            if n >> height & 1:
                peaks.append(levels[height][lo >> height])
                lo += 1 << height
        node = peaks.pop() if peaks else EMPTY_ROOT
        while peaks:
            node = node_hash(peaks.pop(), node)
        roots.append(node)
    return roots


class CompactRange:
    """An append-only accumulator: the tree head of any prefix in O(log n) after O(1) appends.

    It keeps the roots of the perfect subtrees that make up the tree so far (a compact range
    [0, size)), so a verifier can check a signed tree head every N leaves in one pass.
    """

    __slots__ = ("_peaks", "_size")

    def __init__(self) -> None:
        self._peaks: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, hash_of_leaf: bytes) -> None:
        """Append one leaf hash (see ``leaf_hash``)."""
        peaks = self._peaks
        node = hash_of_leaf
        size = self._size
        # Each trailing 1-bit of the old size is a perfect subtree that now has a sibling.
        while size & 1:
            node = hashlib.sha256(_NODE_PREFIX + peaks.pop() + node).digest()
            size >>= 1
        peaks.append(node)
        self._size += 1

    def root(self) -> bytes:
        """Tree head of everything appended so far."""
        if not self._peaks:
            return EMPTY_ROOT
        node = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            node = node_hash(peak, node)
        return node


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 6962 audit path for leaf ``index`` in the tree of ``leaf_hashes``, leaf-side first."""
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    # PATH(m, D[lo:hi]) = PATH(m, one half) : MTH(other half); walking down collects the
    # siblings root-side first, so the result is reversed at the end.
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(root_from_leaf_hashes(leaf_hashes[lo + k : hi]))
            hi = lo + k
        else:
            path.append(root_from_leaf_hashes(leaf_hashes[lo : lo + k]))
            lo += k
    path.reverse()
    return path


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """RFC 6962 consistency proof (SUBPROOF) between tree sizes ``old_size`` and ``new_size``."""
    if not 0 <= old_size <= new_size <= len(leaf_hashes):
        raise ValueError(
            f"cannot prove consistency from size {old_size} to {new_size} "
            f"with {len(leaf_hashes)} leaves"
        )
    return ExtendedTree(EMPTY_FRONTIER, leaf_hashes[:new_size]).consistency_proof(old_size)


@dataclass(frozen=True)
class Frontier:
    """A tree of ``size`` leaves known only by its perfect-subtree roots ("peaks", O(log n)).

    That is all it takes to extend the tree: every node of a larger tree's root and of its
    RFC 6962 consistency proof back to ``size`` is either a peak or built from new leaves.
    """

    size: int
    peaks: Mapping[tuple[int, int], bytes]

    def root(self) -> bytes:
        """The tree head of the ``size`` leaves this frontier stands for."""
        return ExtendedTree(self, ()).root()


EMPTY_FRONTIER = Frontier(0, {})


class ExtendedTree:
    """Subtree roots of a tree of ``base.size + len(leaves)`` leaf hashes, the first
    ``base.size`` of which are known only through their frontier."""

    def __init__(self, base: Frontier, leaves: Sequence[bytes]) -> None:
        self._base = base
        self._leaves = leaves
        self._memo: dict[tuple[int, int], bytes] = dict(base.peaks)
        self.size = base.size + len(leaves)

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a node of the tree (a perfect block or a right-spine node)."""
        known = self._memo.get((lo, hi))
        if known is not None:
            return known
        base = self._base.size
        if lo >= base:
            node = root_from_leaf_hashes(self._leaves[lo - base : hi - base])
        else:
            # Every aligned block inside [0, base) lies within one peak, and we meet the peak
            # before its insides, so this never reaches a single old leaf.
            k = _split(hi - lo)
            node = node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))
        self._memo[(lo, hi)] = node
        return node

    def root(self) -> bytes:
        """Tree head of the whole tree."""
        return self.subtree(0, self.size) if self.size else EMPTY_ROOT

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """RFC 6962 SUBPROOF(old_size, D[0:size], true), leaf-side first."""
        if not 0 <= old_size <= self.size:
            raise ValueError(f"cannot prove consistency from size {old_size} to {self.size}")
        if old_size in (0, self.size):
            return []
        proof: list[bytes] = []
        lo, hi, m = 0, self.size, old_size
        old_is_whole_subtree = True
        while hi - lo != m:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.subtree(lo, lo + k))
                lo, m, old_is_whole_subtree = lo + k, m - k, False
        # SUBPROOF(m, D[m], b): the old root itself is only sent when the verifier cannot
        # already know it.
        if not old_is_whole_subtree:
            proof.append(self.subtree(lo, hi))
        proof.reverse()
        return proof

    def frontier(self) -> Frontier:
        """The peaks of this tree: enough to extend it later without its leaves."""
        peaks: dict[tuple[int, int], bytes] = {}
        lo = 0
        for bit in reversed(range(self.size.bit_length())):
            if self.size >> bit & 1:
                peaks[(lo, lo + (1 << bit))] = self.subtree(lo, lo + (1 << bit))
                lo += 1 << bit
        return Frontier(self.size, peaks)


def verify_inclusion(
    hash_of_leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does ``proof`` put ``hash_of_leaf`` at ``index`` under ``root_hash``?"""
    if not 0 <= index < tree_size or not _well_formed(proof):
        return False
    fn, sn = index, tree_size - 1
    node = hash_of_leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == root_hash


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: does (``new_size``, ``new_root``) extend the old tree append-only?"""
    if not 0 <= old_size <= new_size or not _well_formed(proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        # Every tree extends the empty tree; there is nothing to prove.
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _well_formed(proof: Sequence[bytes]) -> bool:
    return all(len(node) == HASH_SIZE for node in proof)

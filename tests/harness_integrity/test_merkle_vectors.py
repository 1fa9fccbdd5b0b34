"""RFC 6962 Merkle trees against the published vectors (transparency-dev/merkle, C2SP tlog)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.integrity import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

pytestmark = pytest.mark.tier0

# transparency-dev/merkle proof/verify_test.go (the RFC 6962 reference tree d0..d7).
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
LEAF_HASHES = [leaf_hash(data) for data in LEAVES]
ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
# (leaf index, tree size, audit path)
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, consistency proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _root_of(size: int) -> bytes:
    return bytes.fromhex(ROOTS[size])


def _node(level: int, index: int) -> bytes:
    """The perfect subtree at (level, index) of the reference tree, as transparency-dev names it."""
    return root_from_leaf_hashes(LEAF_HASHES[index << level : (index + 1) << level])


def _reference_mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 MTH, recursive, straight from the text."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(_reference_mth(hashes[:k]), _reference_mth(hashes[k:]))


def _flip(data: bytes, position: int = 0) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x10]) + data[position + 1 :]


def test_empty_tree_is_sha256_of_nothing() -> None:
    assert root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_roots_match_vectors(size: int) -> None:
    assert root(LEAVES[:size]).hex() == ROOTS[size]
    assert root_from_leaf_hashes(LEAF_HASHES[:size]).hex() == ROOTS[size]


def test_compact_range_gives_every_prefix_root() -> None:
    tree = CompactRange()
    assert tree.root() == EMPTY_ROOT
    for size, hash_of_leaf in enumerate(LEAF_HASHES, start=1):
        tree.append(hash_of_leaf)
        assert tree.size == size
        assert tree.root().hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_vectors(index: int, size: int, path: list[str]) -> None:
    proof = inclusion_proof(LEAF_HASHES[:size], index)
    assert [node.hex() for node in proof] == path
    assert verify_inclusion(LEAF_HASHES[index], index, size, proof, _root_of(size))


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_corrupted_inclusion_probes_fail(index: int, size: int, path: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in path]
    good_root, leaf = _root_of(size), LEAF_HASHES[index]
    probes = [
        (index - 1, size, good_root, leaf, proof),
        (index + 1, size, good_root, leaf, proof),
        (index ^ 2, size, good_root, leaf, proof),
        (index, size * 2, good_root, leaf, proof),
        (index, size // 2, good_root, leaf, proof),
        (index, size, good_root, b"WrongLeaf", proof),
        (index, size, EMPTY_ROOT, leaf, proof),
        (index, size, SOME_HASH, leaf, proof),
        (index, size, good_root, leaf, [*proof, b""]),
        (index, size, good_root, leaf, [*proof, good_root]),
        (index, size, good_root, leaf, [b"", *proof]),
        (index, size, good_root, leaf, [good_root, *proof]),
    ]
    probes += [
        (index, size, good_root, leaf, [*proof[:i], _flip(proof[i]), *proof[i + 1 :]])
        for i in range(len(proof))
    ]
    if proof:
        probes.append((index, size, good_root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, good_root, leaf, [proof[0], SOME_HASH, *proof[1:]]))
    for probe_index, probe_size, probe_root, probe_leaf, probe_proof in probes:
        assert not verify_inclusion(probe_leaf, probe_index, probe_size, probe_proof, probe_root)


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_consistency_proofs_match_vectors(old: int, new: int, path: list[str]) -> None:
    proof = consistency_proof(LEAF_HASHES[:new], old, new)
    assert [node.hex() for node in proof] == path
    assert verify_consistency(old, new, _root_of(old), _root_of(new), proof)


@pytest.mark.parametrize(("old", "new", "path"), [c for c in CONSISTENCY if c[2]])
def test_corrupted_consistency_probes_fail(old: int, new: int, path: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in path]
    r1, r2 = _root_of(old), _root_of(new)
    probes = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    probes += [
        (old, new, r1, r2, [*proof[:i], _flip(proof[i]), *proof[i + 1 :]])
        for i in range(len(proof))
    ]
    for size1, size2, root1, root2, probe_proof in probes:
        assert not verify_consistency(size1, size2, root1, root2, probe_proof)


@pytest.mark.parametrize(
    ("old", "new", "root1", "root2", "proof", "ok"),
    [
        (0, 0, b"don't care 1", b"don't care 2", [], False),
        (1, 1, b"don't care 1", b"don't care 2", [], False),
        (0, 0, b"don't care 1", b"don't care 1", [], True),
        (0, 1, b"don't care 1", b"don't care 2", [], True),
        (1, 1, b"don't care 2", b"don't care 2", [], True),
        (1, 0, b"don't care 1", b"don't care 2", [], False),
        (2, 1, b"don't care 1", b"don't care 2", [], False),
        (1, 2, b"don't care 1", b"don't care 2", [], False),
        (0, 0, EMPTY_ROOT, b"don't care 2", [], False),
        (1, 1, EMPTY_ROOT, b"don't care 2", [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    ],
)
def test_consistency_edge_cases(
    old: int, new: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    assert verify_consistency(old, new, root1, root2, proof) is ok


@pytest.mark.parametrize(
    ("index", "size", "nodes"),
    [
        # transparency-dev proof_test.go, tree of size 7: a..f, j are leaves, g..i level 1,
        # k level 2, l = hash(i, j) is the "rehashed" ragged right node.
        (4, 7, [(0, 5), (0, 6), (2, 0)]),  # f j k
        (5, 7, [(0, 4), (0, 6), (2, 0)]),  # e j k
        (6, 7, [(1, 2), (2, 0)]),  # i k
        (2, 4, [(0, 3), (1, 0)]),  # d g
        (3, 5, [(0, 2), (1, 0), (0, 4)]),  # c g e
        (3, 6, [(0, 2), (1, 0), (1, 2)]),  # c g i
        (4, 6, [(0, 5), (2, 0)]),  # f k
    ],
)
def test_inclusion_proofs_name_the_expected_nodes(
    index: int, size: int, nodes: list[tuple[int, int]]
) -> None:
    expected = [_node(level, i) for level, i in nodes]
    assert inclusion_proof(LEAF_HASHES[:size], index) == expected


def test_ragged_right_nodes_are_rehashed() -> None:
    l_node = node_hash(_node(1, 2), _node(0, 6))  # l = hash(i, j)
    assert inclusion_proof(LEAF_HASHES[:7], 0) == [_node(0, 1), _node(1, 1), l_node]  # b h l
    assert consistency_proof(LEAF_HASHES[:7], 3, 7) == [
        _node(0, 2),
        _node(0, 3),
        _node(1, 0),
        l_node,
    ]
    assert consistency_proof(LEAF_HASHES[:7], 4, 7) == [l_node]
    assert consistency_proof(LEAF_HASHES[:7], 5, 7) == [
        _node(0, 4),
        _node(0, 5),
        _node(0, 6),
        _node(2, 0),
    ]
    assert consistency_proof(LEAF_HASHES[:7], 6, 7) == [_node(1, 2), _node(0, 6), _node(2, 0)]
    assert consistency_proof(LEAF_HASHES[:8], 7, 8) == [
        _node(0, 6),
        _node(0, 7),
        _node(1, 2),
        _node(2, 0),
    ]


@pytest.mark.parametrize(("index", "size"), [(-1, 3), (3, 3), (0, 0)])
def test_inclusion_proof_rejects_indexes_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="outside a tree"):
        inclusion_proof(LEAF_HASHES[:size], index)


@pytest.mark.parametrize(("old", "new"), [(5, 4), (-1, 3), (3, 9)])
def test_consistency_proof_rejects_impossible_sizes(old: int, new: int) -> None:
    with pytest.raises(ValueError, match="cannot prove consistency"):
        consistency_proof(LEAF_HASHES, old, new)


def test_large_tree_is_iterative() -> None:
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(100_000)]
    tree_root = root_from_leaf_hashes(hashes)
    proof = inclusion_proof(hashes, 76_543)
    assert verify_inclusion(hashes[76_543], 76_543, len(hashes), proof, tree_root)
    old_root = root_from_leaf_hashes(hashes[:65_537])
    proof = consistency_proof(hashes, 65_537, 100_000)
    assert verify_consistency(65_537, 100_000, old_root, tree_root, proof)


_leaf_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=64)


@given(leaves=_leaf_lists)
def test_root_matches_the_recursive_definition(leaves: list[bytes]) -> None:
    hashes = [leaf_hash(data) for data in leaves]
    tree = CompactRange()
    for hash_of_leaf in hashes:
        tree.append(hash_of_leaf)
    assert root(leaves) == _reference_mth(hashes) == tree.root()


@given(leaves=_leaf_lists, data=st.data())
def test_generated_inclusion_proofs_verify_and_flips_fail(
    leaves: list[bytes], data: st.DataObject
) -> None:
    hashes = [leaf_hash(item) for item in leaves]
    size = len(hashes)
    index = data.draw(st.integers(0, size - 1), label="index")
    tree_root = root_from_leaf_hashes(hashes)
    proof = inclusion_proof(hashes, index)
    assert verify_inclusion(hashes[index], index, size, proof, tree_root)

    byte = data.draw(st.integers(0, 31), label="byte")
    assert not verify_inclusion(_flip(hashes[index], byte), index, size, proof, tree_root)
    assert not verify_inclusion(hashes[index], index, size, proof, _flip(tree_root, byte))
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1), label="proof element")
        bad = [*proof[:at], _flip(proof[at], byte), *proof[at + 1 :]]
        assert not verify_inclusion(hashes[index], index, size, bad, tree_root)


@given(leaves=_leaf_lists, data=st.data())
def test_generated_consistency_proofs_verify_and_flips_fail(
    leaves: list[bytes], data: st.DataObject
) -> None:
    hashes = [leaf_hash(item) for item in leaves]
    new = len(hashes)
    old = data.draw(st.integers(1, new), label="old size")
    old_root, new_root = root_from_leaf_hashes(hashes[:old]), root_from_leaf_hashes(hashes)
    proof = consistency_proof(hashes, old, new)
    assert verify_consistency(old, new, old_root, new_root, proof)

    byte = data.draw(st.integers(0, 31), label="byte")
    assert not verify_consistency(old, new, _flip(old_root, byte), new_root, proof)
    assert not verify_consistency(old, new, old_root, _flip(new_root, byte), proof)
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1), label="proof element")
        bad = [*proof[:at], _flip(proof[at], byte), *proof[at + 1 :]]
        assert not verify_consistency(old, new, old_root, new_root, bad)

"""``proofs.json``: state-tree roots, stored node records and inclusion/absence proofs (PROTOCOL
section 10), computed by ``chain.statetree`` and checked by ``chain.proof.verify_proof``.

The sets include section 10.5's (so the file and the page agree), two keys whose key hashes share
five nibbles (a chain of single-child nodes), and a set of 40 keys (full upper levels). The
tampered proofs each break one thing a verifier must check; every one must be refused.
"""

from __future__ import annotations

from typing import Any

from chain.encoding import H, encode
from chain.proof import verify_proof
from chain.statetree import EMPTY_ROOT, MemoryNodeSource, StateTree

_SETS: list[tuple[str, dict[bytes, bytes]]] = [
    ("empty", {}),
    ("one key", {b"a": b"1"}),
    ("three keys", {b"a": b"1", b"b": b"2", b"c": b"3"}),
    ("two keys sharing five nibbles", {b"p1": b"x", b"p112396": b"x"}),
    ("forty keys", {b"k%d" % i: b"v%d" % i for i in range(40)}),
]
# Keys proven in every set, present or not.
_PROBES = [b"a", b"b", b"e", b"x15", b"p1", b"k7", b""]


def _tree(items: dict[bytes, bytes]) -> tuple[StateTree, dict[bytes, bytes | None]]:
    source = MemoryNodeSource()
    tree = StateTree(source, EMPTY_ROOT)
    update = tree.compute_update(dict(items))
    source.write(update.node_writes)
    tree.apply(update)
    return tree, update.node_writes


def proofs_doc() -> dict[str, Any]:
    """proofs.json."""
    sets = []
    for name, items in _SETS:
        tree, writes = _tree(items)
        sets.append(
            {
                "name": name,
                "items": [[k.hex(), v.hex()] for k, v in sorted(items.items())],
                "root": tree.root.hex(),
                "records": [
                    [path.hex(), record.hex()]
                    for path, record in sorted(writes.items())
                    if record is not None
                ],
                "proofs": [_proof_case(tree, items, key) for key in _PROBES],
            }
        )
    return {
        "about": (
            "docs/PROTOCOL.md section 10. `sets`: key/value pairs (hex, raw bytes), the state root, "
            "the stored records (nibble path, encoded record) and, for probe keys, a proof (wire "
            "form, encoded) with the claimed value (hex, or null: absence) and `valid`. `updates`: "
            "the root after changes (value null: delete) equals the root of the resulting set. "
            "`tampered`: proofs changed in one way each, which verify_proof must refuse."
        ),
        "sets": sets,
        "updates": _updates(),
        "tampered": _tampered(),
    }


def _proof_case(tree: StateTree, items: dict[bytes, bytes], key: bytes) -> dict[str, Any]:
    value = items.get(key)
    wire = tree.prove(key).to_wire()
    return {
        "key": key.hex(),
        "value": None if value is None else value.hex(),
        "proof_encoded": encode(wire).hex(),
        "valid": verify_proof(tree.root, key, value, wire),
    }


def _updates() -> list[dict[str, Any]]:
    base = dict(_SETS[4][1])
    changes: list[tuple[str, dict[bytes, bytes | None]]] = [
        ("delete all but one key", {k: None for k in list(base)[1:]}),
        ("change a value, add a key, delete a key", {b"k1": b"new", b"k40": b"v40", b"k2": None}),
        ("delete an absent key", {b"nothing": None}),
    ]
    out = []
    for name, change in changes:
        tree, _ = _tree(base)
        update = tree.compute_update(change)
        after = {k: v for k, v in {**base, **change}.items() if v is not None}
        assert update.root == _tree(after)[0].root, "history independence"
        out.append(
            {
                "name": name,
                "before": _SETS[4][0],
                "changes": [[k.hex(), None if v is None else v.hex()] for k, v in sorted(change.items())],
                "root": update.root.hex(),
                "deleted_records": sorted(p.hex() for p, r in update.node_writes.items() if r is None),
            }
        )
    return out


def _tampered() -> list[dict[str, Any]]:
    three = _SETS[2][1]
    tree, _ = _tree(three)
    forty = _tree(_SETS[4][1])[0]
    root = tree.root
    inclusion = tree.prove(b"b").to_wire()  # [[[bitmap, siblings]], [1]]
    empty_slot = tree.prove(b"e").to_wire()  # [[...], [0]]
    other_leaf = tree.prove(b"x15").to_wire()  # [[...], [2, kh(a), vh(1)]]
    deep = forty.prove(b"k7").to_wire()
    ((bitmap, siblings),) = inclusion[0]
    okh, ovh = other_leaf[1][1], other_leaf[1][2]
    flipped = [bytes([siblings[0][0] ^ 1]) + siblings[0][1:], *siblings[1:]]
    cases: list[tuple[str, bytes, bytes, bytes | None, Any]] = [
        ("inclusion, as given (valid)", root, b"b", b"2", inclusion),
        ("a sibling changed", root, b"b", b"2", [[[bitmap, flipped]], [1]]),
        ("another value claimed", root, b"b", b"3", inclusion),
        ("absence claimed with an inclusion proof", root, b"b", None, inclusion),
        ("another key claimed", root, b"a", b"2", inclusion),
        ("against another root", H(b"node", b"other"), b"b", b"2", inclusion),
        ("siblings reordered", root, b"b", b"2", [[[bitmap, siblings[::-1]]], [1]]),
        ("a sibling dropped", root, b"b", b"2", [[[bitmap, siblings[:1]]], [1]]),
        ("the bitmap changed", root, b"b", b"2", [[[bitmap | 1, siblings]], [1]]),
        ("bitmap 0", root, b"b", b"2", [[[0, siblings]], [1]]),
        ("an extra step", root, b"b", b"2", [[[bitmap, siblings], [bitmap, siblings]], [1]]),
        ("no steps", root, b"b", b"2", [[], [1]]),
        ("a value claimed with an empty-slot proof", root, b"e", b"1", empty_slot),
        ("empty slot claimed where a key's leaf is", root, b"x15", None, [other_leaf[0], [0]]),
        ("other leaf is the key's own", root, b"a", None, [other_leaf[0], [2, H(b"key", b"a"), ovh]]),
        ("other leaf off the key's path", root, b"e", None, [empty_slot[0], [2, okh, ovh]]),
        ("other leaf's value hash changed", root, b"x15", None, [other_leaf[0], [2, okh, H(b"value", b"9")]]),
        ("unknown terminal kind", root, b"b", b"2", [inclusion[0], [3]]),
        ("terminal with extra items", root, b"b", b"2", [inclusion[0], [1, b""]]),
        ("a sibling of 31 bytes", root, b"b", b"2", [[[bitmap, [siblings[0][:31], siblings[1]]]], [1]]),
        ("not a pair", root, b"b", b"2", [inclusion[0]]),
        ("deep inclusion, as given (valid)", forty.root, b"k7", b"v7", deep),
        ("deep inclusion, the last step dropped", forty.root, b"k7", b"v7", [deep[0][:-1], deep[1]]),
        (
            "deep inclusion, the steps of another key",
            forty.root,
            b"k7",
            b"v7",
            [forty.prove(b"k8").to_wire()[0], [1]],
        ),
    ]
    return [
        {
            "name": name,
            "root": r.hex(),
            "key": key.hex(),
            "value": None if value is None else value.hex(),
            "proof_encoded": encode(wire).hex(),
            "valid": verify_proof(r, key, value, wire),
        }
        for name, r, key, value, wire in cases
    ]

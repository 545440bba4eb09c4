"""The validator's signer state and consensus WAL, including a real crash between "vote
persisted" and "vote sent"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chain.certificate import PRECOMMIT, PREVOTE
from chain.keys import KeyPair, verify_signature
from node.consensus import PRECOMMIT_STEP, Broadcast, Consensus, TimeoutParams, proposer_for
from node.messages import NIL, Vote
from node.privval import FileSigner, SignerStateError
from node.wal import WAL
from tests.test_consensus import CHAIN, KEYS, VALIDATORS, App

BH1 = b"\x01" * 32
BH2 = b"\x02" * 32


def test_signer_signs_forward_only_and_never_conflicting(tmp_path: Path) -> None:
    signer = FileSigner(KEYS[0], tmp_path / "signer")
    first = signer.sign_vote(CHAIN, PREVOTE, 5, 0, BH1)
    assert first is not None
    assert signer.sign_vote(CHAIN, PREVOTE, 5, 0, BH1) == first  # same message: same signature
    assert signer.sign_vote(CHAIN, PREVOTE, 5, 0, BH2) is None  # conflicting
    assert signer.sign_vote(CHAIN, PREVOTE, 5, 0, NIL) is None
    assert signer.sign_vote(CHAIN, PRECOMMIT, 5, 0, BH1) is not None  # next step
    assert signer.sign_vote(CHAIN, PREVOTE, 5, 0, BH1) is None  # backwards
    assert signer.sign_proposal(CHAIN, 4, 9, BH1, -1) is None  # an earlier height
    assert signer.sign_proposal(CHAIN, 5, 1, BH2, 0) is not None  # a later round


def test_signer_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "signer"
    sig = FileSigner(KEYS[0], path).sign_vote(CHAIN, PRECOMMIT, 3, 2, BH1)
    again = FileSigner(KEYS[0], path)
    assert again.sign_vote(CHAIN, PRECOMMIT, 3, 2, BH2) is None
    assert again.sign_vote(CHAIN, PRECOMMIT, 3, 2, BH1) == sig
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_corrupt_signer_state_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "signer"
    path.write_bytes(b"\xff\x00garbage")
    with pytest.raises(SignerStateError) as err:
        FileSigner(KEYS[0], path)
    assert err.value.code == "signer_state_corrupt"


def _vote(key: KeyPair, t: int, h: int, r: int, bh: bytes) -> Vote:
    from chain.certificate import vote_sign_bytes

    return Vote(t, h, r, bh, key.public, key.sign(vote_sign_bytes(CHAIN, t, h, r, bh)))


def test_wal_round_trip_and_torn_tail(tmp_path: Path) -> None:
    wal = WAL(tmp_path / "wal")
    wal.open_height(7)
    votes = [_vote(KEYS[i], PREVOTE, 7, 0, BH1) for i in range(3)]
    for v in votes:
        wal.append(v, sync=True)
    wal.close()
    assert WAL(tmp_path / "wal").read(7) == votes
    path = tmp_path / "wal" / "7.wal"
    path.write_bytes(path.read_bytes()[:-5])  # a crash mid-append
    assert WAL(tmp_path / "wal").read(7) == votes[:2]
    path.write_bytes(path.read_bytes() + b"\x00\x00\x00\x05\x00\x00\x00\x00junk!")
    assert WAL(tmp_path / "wal").read(7) == votes[:2]
    # Restart at the same height: the torn tail is cut off, and new records follow the good ones.
    wal = WAL(tmp_path / "wal")
    wal.open_height(7)
    wal.append(votes[2], sync=True)
    wal.close()
    assert WAL(tmp_path / "wal").read(7) == votes
    wal = WAL(tmp_path / "wal")
    wal.open_height(8)
    assert not path.exists() and wal.read(8) == []


_CRASHER = r"""
import os, signal, sys
from pathlib import Path
from chain.keys import verify_signature
from node.consensus import Broadcast, Consensus, TimeoutParams
from node.messages import Vote
from node.privval import FileSigner
from node.wal import WAL
from tests.test_consensus import CHAIN, KEYS, VALIDATORS, App, _vote
from chain.certificate import PREVOTE, PRECOMMIT, proposal_sign_bytes
from node.consensus import proposer_for
from node.messages import Proposal

home = Path(sys.argv[1]); me = KEYS[int(sys.argv[2])]
wal = WAL(home / "wal"); wal.open_height(1)
signer = FileSigner(me, home / "signer")
node = Consensus(CHAIN, 1, VALIDATORS, App(), signer, verify_signature, TimeoutParams())
prop_key = next(k for k in KEYS if k.public == proposer_for(VALIDATORS, 1, 0))
bh, block = App().propose(1, 0)
proposal = Proposal(1, 0, bh, -1, prop_key.public, prop_key.sign(proposal_sign_bytes(CHAIN, 1, 0, bh, -1)), block)

def drive(effects):
    for e in effects:
        if isinstance(e, Broadcast):
            wal.append(e.message, sync=True)        # persisted ...
            if isinstance(e.message, Vote) and e.message.vote_type == PRECOMMIT:
                os.kill(os.getpid(), signal.SIGKILL)  # ... and killed before it is sent

drive(node.start())
wal.append(proposal, sync=False)
drive(node.on_proposal(proposal))
for k in KEYS:
    if k is not me:
        v = _vote(k, PREVOTE, 1, 0, bh)
        wal.append(v, sync=False)
        drive(node.on_vote(v))
print("not killed", flush=True)
"""


@pytest.mark.io
@pytest.mark.slow
def test_crash_between_persist_and_send_then_restart(tmp_path: Path) -> None:
    me_index = next(i for i, k in enumerate(KEYS) if k.public != proposer_for(VALIDATORS, 1, 0))
    me = KEYS[me_index]
    proc = subprocess.run(
        [sys.executable, "-c", _CRASHER, str(tmp_path), str(me_index)],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    records = WAL(tmp_path / "wal").read(1)
    precommits = [
        r for r in records if isinstance(r, Vote) and r.vote_type == PRECOMMIT and r.validator == me.public
    ]
    assert len(precommits) == 1 and precommits[0].block_hash != NIL
    signer = FileSigner(me, tmp_path / "signer")
    node = Consensus(CHAIN, 1, VALIDATORS, App(), signer, verify_signature, TimeoutParams())
    effects = node.restore(records)
    assert Broadcast(precommits[0]) in effects  # the unsent vote goes out now, unchanged
    assert node.step == PRECOMMIT_STEP and node.locked_value == precommits[0].block_hash
    assert signer.sign_vote(CHAIN, PRECOMMIT, 1, 0, NIL) is None
    assert signer.sign_vote(CHAIN, PREVOTE, 1, 0, NIL) is None
    assert verify_signature(me.public, precommits[0].signature, precommits[0].sign_bytes(CHAIN))

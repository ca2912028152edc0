"""The zero-signer check (RELIABILITY C4, C5): ecrecover yields the empty address for a signature
it cannot recover, so a claimed signer of address zero must never be accepted, neither by the
signature view nor as a batch signer (since ADR 011 a batch signer must have reserved votes in
the call, so a zero signer is refused before its signature is checked)."""

from __future__ import annotations

import boa
import pytest

from pactbond import eip712
from tests.contracts.unit.votes.conftest import SUBMITTED, VERDICT, N, pack
from tests.contracts.unit.votes.test_batch import batch, open_jobs, settle_batch

ZERO = "0x" + "00" * 20
ECRECOVER = "0x" + "00" * 19 + "01"
DIGEST = bytes.fromhex("5a" * 32)
HALF_N = N // 2

# well formed for the contract (65 bytes, v 27 or 28, low s) yet unrecoverable
UNRECOVERABLE = {
    "r-zero": pack(0, 1, 27),
    "s-zero": pack(1, 0, 28),
    "r-equal-to-n": pack(N, 1, 27),
    "r-not-an-x-on-the-curve": pack(5, HALF_N, 27),  # 5**3 + 7 = 132 is no square mod p
}


def precompile_recovers(digest: bytes, sig: bytes) -> bool:
    r, s, v = sig[:32], sig[32:64], sig[64]
    out = boa.env.raw_call(ECRECOVER, data=digest + v.to_bytes(32, "big") + r + s).output
    return out != b"" and out != bytes(32)


@pytest.mark.parametrize("name", list(UNRECOVERABLE))
def test_is_valid_signature__unrecoverable_signature_for_address_zero__refused(world, name):
    sig = UNRECOVERABLE[name]
    assert not precompile_recovers(DIGEST, sig)  # the premise: ecrecover gives address zero
    assert world.escrow.is_valid_signature(ZERO, DIGEST, sig) is False


def test_is_valid_signature__valid_signature_for_address_zero__refused(world):
    """A real signature recovers to its signer, never to zero: still refused for zero."""
    sig = eip712.sign_digest(world.evaluators[0].key, DIGEST)
    assert precompile_recovers(DIGEST, sig)
    assert world.escrow.is_valid_signature(ZERO, DIGEST, sig) is False
    assert world.escrow.is_valid_signature(world.evaluators[0].address, DIGEST, sig) is True


@pytest.mark.parametrize("name", list(UNRECOVERABLE))
def test_settle_batch__extra_signer_address_zero__refused_nothing_counted(world, name):
    """ADR 011: every batch signature must cover votes in the call, and every vote's member must
    be reserved, so a signer of address zero is refused before its signature is looked at:
    alone ("signature without votes") or with votes of its own ("member not reserved"). (Before
    ADR 011 its signature was checked and refused: "bad signature".)"""
    pid, t, jids = open_jobs(world, 2)
    deadline = world.job(jids[0])["deadline"]
    members = world.evaluators[:2]
    sigs, items = batch(world, members, {jids[0]: [9000, 8000], jids[1]: [3000, 4000]}, 0, deadline)
    forged = (ZERO, sigs[0][1], deadline, UNRECOVERABLE[name])
    before = [world.escrow.job(j) for j in jids]
    with boa.reverts("vote: signature without votes"):
        settle_batch(world, pid, t, 0, items, [*sigs, forged])
    zero_votes = [(jids[0], ZERO, 9000, b"\x01" * 32), (jids[1], ZERO, 9000, b"\x01" * 32)]
    with boa.reverts("vote: member not reserved"):
        settle_batch(world, pid, t, 0, [*items[:2], zero_votes[0], *items[2:], zero_votes[1]],
                     [*sigs, forged])
    assert [world.escrow.job(j) for j in jids] == before
    assert [world.job(j)["state"] for j in jids] == [SUBMITTED] * 2
    # the same batch without the forged signer counts
    settle_batch(world, pid, t, 0, items, sigs)
    assert [world.job(j)["state"] for j in jids] == [VERDICT] * 2

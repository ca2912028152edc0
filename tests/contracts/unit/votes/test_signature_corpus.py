"""The bad-signature corpus of RELIABILITY.md (C5): every item refused by settle with its reason
and by is_valid_signature; bulk random and valid-but-wrong-field signatures, 0 accepted."""

from __future__ import annotations

import random

import boa
import pytest

from pactbond import eip712
from tests.contracts.unit.votes.conftest import (
    CORPUS,
    SUBMITTED,
    VoteCtx,
    build_corpus,
    corpus_ctx,
    random_signature,
    raw_vote,
    submitted_job,
    wrong_field,
)


@pytest.fixture
def corpus_job(world):
    """A submitted job and the vote evaluator 0 is meant to sign for it."""
    jid, _ = submitted_job(world)
    return jid, corpus_ctx(world, jid, world.evaluators[0])


def test_settle__valid_corpus_base__counted(world, corpus_job):
    """The control: the untampered signature of the corpus vote is accepted."""
    jid, c = corpus_job
    assert world.escrow.vote_digest(jid, c.deliverable, c.spec, c.score, c.evidence, 0, c.deadline) == c.digest()
    assert world.escrow.is_valid_signature(c.member, c.digest(), c.sign()) is True
    world.settle(jid, [c.signed_vote()])
    assert world.job(jid)["r0"] == (c.score + 1)


@pytest.mark.parametrize("name", CORPUS)
def test_settle__corpus_signature__bad_signature(world, corpus_job, name):
    jid, c = corpus_job
    sig = build_corpus(c, world.evaluators[1].key, world.attacker.key)[name]
    assert world.escrow.is_valid_signature(c.member, c.digest(), sig) is False
    with boa.reverts("vote: bad signature"):
        world.settle(jid, [(c.member, c.score, c.evidence, c.deadline, sig)])
    assert world.job(jid)["r0"] == 0


@pytest.mark.parametrize("name", ["high-s twin", "v flipped", "wrong score", "another member's key"])
def test_settle__corpus_signature_among_two_valid__whole_call_reverts(world, corpus_job, name):
    jid, c = corpus_job
    sig = build_corpus(c, world.evaluators[1].key, world.attacker.key)[name]
    votes = [world.vote(m, jid, 9000) for m in world.evaluators[1:]] + [(c.member, c.score, c.evidence, c.deadline, sig)]
    with boa.reverts("vote: bad signature"):
        world.settle(jid, votes)
    assert (world.job(jid)["state"], world.job(jid)["r0"]) == (SUBMITTED, 0)


@pytest.mark.parametrize("case", [
    "outsider signs for itself", "appeal member signs for itself", "expired vote deadline",
    "score above 10000", "duplicate vote", "revoked key",
])
def test_settle__corpus_vote_with_valid_signature__specific_reason(world, corpus_job, case):
    jid, c = corpus_job
    e0 = world.evaluators[0]
    if case == "outsider signs for itself":
        vote, reason = raw_vote(world, world.attacker.key, world.attacker.address, jid, 9000), "vote: member not reserved"
    elif case == "appeal member signs for itself":
        a = world.appeal_evaluators[0]
        vote, reason = raw_vote(world, a.key, a.address, jid, 9000), "vote: member not reserved"
    elif case == "expired vote deadline":
        vote, reason = raw_vote(world, e0.key, e0.address, jid, 9000, deadline=world.now() - 1), "vote: deadline passed"
    elif case == "score above 10000":
        vote, reason = raw_vote(world, e0.key, e0.address, jid, 10_001), "vote: score above 10000"
    elif case == "duplicate vote":
        world.settle(jid, [c.signed_vote()])
        vote, reason = raw_vote(world, e0.key, e0.address, jid, 9000), "vote: duplicate vote"
    else:
        vote, reason = c.signed_vote(), "vote: key revoked"
        with boa.env.prank(e0.address):
            world.registry.revoke_key()
    member, score, evidence, deadline, sig = vote
    digest = world.escrow.vote_digest(jid, c.deliverable, c.spec, score, evidence, 0, deadline)
    assert world.escrow.is_valid_signature(member, digest, sig) is True  # only the vote rules refuse it
    r0 = world.job(jid)["r0"]
    with boa.reverts(reason):
        world.settle(jid, [vote])
    assert world.job(jid)["r0"] == r0


def test_settle__high_s_twin__raw_ecrecover_would_accept_it(world, corpus_job):
    """The twin is a real signature of the member (plain ecrecover recovers it): only the
    contract's low-s rule refuses it."""
    from eth_keys import keys

    _, c = corpus_job
    twin = build_corpus(c, world.evaluators[1].key, world.attacker.key)["high-s twin"]
    r, s, v = int.from_bytes(twin[:32], "big"), int.from_bytes(twin[32:64], "big"), twin[64]
    assert s > eip712.HALF_N
    pub = keys.ecdsa_recover(c.digest(), keys.Signature(vrs=(v - 27, r, s)))
    assert pub.to_checksum_address() == c.member
    assert world.escrow.is_valid_signature(c.member, c.digest(), twin) is False


# ---------------------------------------------------------------------------------------------
# bulk runs through is_valid_signature (a view)


def bulk_ctx(world, rng: random.Random) -> VoteCtx:
    e0 = world.evaluators[0]
    return VoteCtx(
        chain_id=boa.env.evm.patch.chain_id, verifying=world.escrow.address, key=e0.key, member=e0.address,
        job_id=rng.randrange(1, 2**32), deliverable=rng.randbytes(32), spec=rng.randbytes(32),
        score=rng.randrange(10_001), evidence=rng.randbytes(32), deadline=rng.randrange(2**40),
    )


@pytest.mark.parametrize("n", [1_000, pytest.param(10_000, marks=pytest.mark.slow)])
def test_is_valid_signature__random_signatures__none_accepted(world, n):
    rng = random.Random(f"random-signatures-{n}")
    accepted = []
    c = bulk_ctx(world, rng)
    for i in range(n):
        if i % 50 == 0:  # a fresh vote every 50 signatures
            c = bulk_ctx(world, rng)
        sig = random_signature(rng)
        if world.escrow.is_valid_signature(c.member, c.digest(), sig):
            accepted.append(sig)
    assert accepted == []
    assert world.escrow.is_valid_signature(c.member, c.digest(), c.sign()) is True  # the control


@pytest.mark.parametrize("n", [1_000, pytest.param(10_000, marks=pytest.mark.slow)])
def test_is_valid_signature__valid_but_wrong_field__none_accepted(world, n):
    rng = random.Random(f"wrong-field-{n}")
    accepted, controls = [], 0
    for i in range(n):
        c = bulk_ctx(world, rng)
        field, signed = wrong_field(c, rng)
        if world.escrow.is_valid_signature(c.member, c.digest(), signed.sign()):
            accepted.append((field, signed))
        if i % 500 == 0:  # the same vote unchanged is accepted: the check can fail
            assert world.escrow.is_valid_signature(c.member, c.digest(), c.sign()) is True
            controls += 1
    assert accepted == []
    assert controls == n // 500


def test_is_valid_signature__outsider_signature__valid_for_its_signer_only(world):
    """is_valid_signature judges the bytes against the address given; membership is settle's job."""
    jid, _ = submitted_job(world)
    a = world.attacker
    _, score, evidence, deadline, sig = raw_vote(world, a.key, a.address, jid, 9000)
    j = world.job(jid)
    digest = world.escrow.vote_digest(jid, j["deliverable"], world.pacts[j["pact_id"]].spec_hash, score, evidence, 0, deadline)
    assert world.escrow.is_valid_signature(a.address, digest, sig) is True
    assert world.escrow.is_valid_signature(world.evaluators[0].address, digest, sig) is False

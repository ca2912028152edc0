"""RELIABILITY C12: key rotation and revocation. After a rotation takes effect, the rotated-out
keys fail for new jobs while jobs in flight keep the committee (and appeal committee) version
they were opened with; a revocation works at once, for every vote posted afterwards, and
releases nothing."""

from __future__ import annotations

from typing import Any

import boa

from tests.conftest import actor
from tests.contracts.conftest import DAY, E18, ETH, HOUR, MIN_ROTATION_DELAY
from tests.contracts.unit.security.conftest import (
    EXPIRED_NO_VERDICT,
    SETTLED,
    VERDICT,
    assert_books,
    call_as,
)


def rotate(world: Any, committee_id: int, n: int, prefix: str, threshold: int = 2) -> tuple[int, list[Any]]:
    """Propose a version of fresh members who accept it and stake; return (version, members)
    once it has taken effect."""
    members = [actor(f"{prefix}-{i}") for i in range(n)]
    world.fund(*members)
    with boa.env.prank(world.admin.address):
        vid = world.registry.propose_version(committee_id, [m.address for m in members], threshold,
                                             10 * E18, 5 * E18)
    for m in members:
        call_as(m, world.registry.accept_version, vid)
        call_as(m, world.escrow.stake, ETH, 20 * E18, True, value=20 * E18)
    world.warp(MIN_ROTATION_DELAY)
    assert world.registry.current_version(committee_id) == vid
    return vid, members


def test_rotation__old_keys_fail_for_new_jobs__in_flight_job_keeps_its_version(world):
    pid, t = world.create_pact(eval_window=DAY)
    world.stake_agent()
    old_job = world.open(pid)
    world.accept(old_job)
    world.submit(old_job)
    v1 = world.job(old_job)["cv"]
    v2, newcomers = rotate(world, t.committee_id, 3, "rot")
    new_job = world.open(pid)
    world.accept(new_job)
    world.submit(new_job)
    assert (world.job(old_job)["cv"], world.job(new_job)["cv"]) == (v1, v2)
    # rotated-out keys fail on the new job, newcomers fail on the old one
    for m in world.evaluators:
        with boa.reverts("vote: member not reserved"):
            world.settle(new_job, [world.vote(m, new_job, 9000)])
    for m in newcomers:
        with boa.reverts("vote: member not reserved"):
            world.settle(old_job, [world.vote(m, old_job, 9000)])
    # each job is judged, paid and released by its own version's members
    world.settle(old_job, [world.vote(m, old_job, 9000) for m in world.evaluators])
    world.settle(new_job, [world.vote(m, new_job, 9000) for m in newcomers])
    world.warp(t.challenge_window + 1)
    for jid in (old_job, new_job):
        call_as(world.attacker, world.escrow.finalize, jid, t.as_tuple())
        assert world.job(jid)["state"] == SETTLED
    fee = t.evaluator_fee // 3
    for m in [*world.evaluators, *newcomers]:
        assert world.escrow.credits(m.address, ETH) == fee
        assert world.escrow.evaluator_stake(m.address, ETH)[1] == 0  # reservations released
    assert_books(world, extra=tuple(newcomers))


def test_appeal_rotation__challenged_job_keeps_its_appeal_version(world):
    pid, t = world.create_pact(appeal_window=DAY)
    world.stake_agent()
    jid = world.open(pid)
    world.accept(jid)
    world.submit(jid)
    world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators])
    world.warp(1)
    call_as(world.buyer, world.facet.challenge, jid, t.as_tuple(), 9000, value=t.challenge_bond)
    av = world.job(jid)["av"]
    _, newcomers = rotate(world, t.appeal_committee_id, 3, "appeal-rot")
    assert world.registry.current_version(t.appeal_committee_id) != av
    with boa.reverts("vote: not an appeal member"):
        world.appeal(jid, [world.vote(newcomers[0], jid, 2000, round_=1)])
    world.appeal(jid, [world.vote(m, jid, 2000, round_=1) for m in world.appeal_evaluators])
    call_as(world.attacker, world.facet.resolve, jid, t.as_tuple())  # every bound member voted
    assert world.job(jid)["state"] == SETTLED
    assert all(world.escrow.credits(m.address, ETH) > 0 for m in world.appeal_evaluators)
    assert all(world.escrow.credits(m.address, ETH) == 0 for m in newcomers)
    assert_books(world, extra=tuple(newcomers))


def test_revocation__at_once_in_flight_and_new_jobs__releases_nothing(world):
    pid, t = world.create_pact()
    world.stake_agent()
    jid = world.open(pid)
    world.accept(jid)
    world.submit(jid)
    e0, e1, _ = world.evaluators
    signed = world.vote(e0, jid, 9000)  # signed before the revocation
    world.settle(jid, [world.vote(e1, jid, 8000)])
    stake_before = world.escrow.evaluator_stake(e0.address, ETH)
    call_as(e0, world.registry.revoke_key)
    # the same block: refused at once; counted votes stay counted
    with boa.reverts("vote: key revoked"):
        world.settle(jid, [signed])
    assert world.job(jid)["r0"] == (8001 << 16)
    # nothing is released: stake, reservation and pending are as they were
    assert world.escrow.evaluator_stake(e0.address, ETH) == stake_before
    assert stake_before[1] == 5 * E18
    with boa.reverts("stake: exceeds unreserved stake"):
        call_as(e0, world.escrow.request_unstake, ETH, stake_before[0] - stake_before[1] + 1)
    # new jobs do not reserve the revoked key
    j2 = world.open(pid)
    assert world.job(j2)["reserved"] == 0b110
    # silence: the revoked member without a counted vote still loses its reservation
    world.warp(HOUR + 1)
    burned0 = world.escrow.burned(ETH)
    call_as(world.attacker, world.facet.expire, jid, t.as_tuple())
    assert world.job(jid)["state"] == EXPIRED_NO_VERDICT
    assert world.escrow.burned(ETH) - burned0 == 2 * 5 * E18  # e0 (revoked) and e2 (silent)
    assert world.escrow.evaluator_stake(e0.address, ETH)[:2] == (stake_before[0] - 5 * E18, 0)
    assert_books(world)


def test_revocation__round1_and_batch_signatures_refused_at_once(world):
    from pactbond import eip712
    from pactbond.models import Vote

    pid, t = world.create_pact()
    world.stake_agent()
    jid = world.open(pid)
    world.accept(jid)
    world.submit(jid)
    e2 = world.evaluators[2]
    j = world.job(jid)
    v = Vote(job_id=jid, deliverable_hash=j["deliverable"], spec_hash=t.spec_hash, score_bps=9000,
             evidence_hash=b"\x05" * 32, round=0, deadline=j["deadline"])
    leaf = eip712.vote_struct_hash(v)
    sig = eip712.sign_digest(e2.key, world.escrow.batch_digest(leaf, 0, j["deadline"]))
    call_as(e2, world.registry.revoke_key)
    with boa.reverts("vote: key revoked"):
        call_as(world.attacker, world.facet.settle_batch, pid, t.as_tuple(), 0,
                [(jid, e2.address, 9000, b"\x05" * 32)], [(e2.address, leaf, j["deadline"], sig)])
    world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators[:2]])
    assert world.job(jid)["state"] == VERDICT
    assert world.job(jid)["close_at"] == world.now()  # the only unvoted reserved key is revoked
    world.warp(1)
    call_as(world.buyer, world.facet.challenge, jid, t.as_tuple(), 9000, value=t.challenge_bond)
    a0 = world.appeal_evaluators[0]
    signed = world.vote(a0, jid, 2000, round_=1)
    call_as(a0, world.registry.revoke_key)
    with boa.reverts("vote: key revoked"):
        world.appeal(jid, [signed])

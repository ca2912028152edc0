"""PactRegistry.open_roster: the committee rules for opening a job, seen directly and through escrow.open."""

import boa
import pytest

from tests.contracts.conftest import E18, MIN_ROTATION_DELAY
from tests.contracts.unit.registry.conftest import new_actors

OPEN = 1


def _open_raw(world, pid, cv, av, value=E18):
    """escrow.open with explicit expected versions."""
    t = world.pacts[pid]
    with boa.env.prank(world.buyer.address):
        return world.escrow.open(t.as_tuple(), pid, world.agent.address, value, cv, av,
                                 value=value + t.evaluator_fee)


def _pause(world):
    with boa.env.prank(world.guardian.address):
        world.registry.set_paused(True)


def test_open_roster__direct_call__returns_bound_version_roster(world):
    r = world.registry
    pid, t = world.create_pact()
    cv, av = world.versions(t)
    with boa.env.prank(world.attacker.address):
        roster = r.open_roster(pid, t.committee_id, t.appeal_committee_id, cv, av, world.buyer.address, world.agent.address)
    assert roster == r.roster(cv)
    assert roster.committee_id == t.committee_id
    assert roster.members == [m.address for m in world.evaluators]
    assert (roster.threshold, roster.active) == (2, 0b111)


def test_open__valid__job_binds_current_versions(world):
    pid, t = world.create_pact()
    cv, av = world.versions(t)
    jid = world.open(pid)
    j = world.job(jid)
    assert (j["state"], j["cv"], j["av"], j["reserved"]) == (OPEN, cv, av, 0b111)


def test_open__paused__reverts(world):
    pid, t = world.create_pact()
    _pause(world)
    n = world.escrow.job_count()
    with boa.reverts("escrow: paused"):
        world.open(pid)
    cv, av = world.versions(t)
    with boa.reverts("escrow: paused"):
        world.registry.open_roster(pid, t.committee_id, t.appeal_committee_id, cv, av, world.buyer.address, world.agent.address)
    assert world.escrow.job_count() == n


# -- approval ------------------------------------------------------------------------------

def test_open__pact_not_approved__reverts(world):
    pid, t = world.create_pact(approve=False)
    with boa.reverts("escrow: pact not approved"):
        world.open(pid)
    with boa.env.prank(world.admin.address):
        world.registry.approve_pact(t.committee_id, pid, t.as_tuple())
    with boa.reverts("escrow: pact not approved"):
        world.open(pid)  # the appeal committee has not approved yet
    with boa.env.prank(world.admin.address):
        world.registry.approve_pact(t.appeal_committee_id, pid, t.as_tuple())
    assert world.job(world.open(pid))["state"] == OPEN


def test_open__only_appeal_committee_approved__reverts(world):
    pid, t = world.create_pact(approve=False)
    with boa.env.prank(world.admin.address):
        world.registry.approve_pact(t.appeal_committee_id, pid, t.as_tuple())
    with boa.reverts("escrow: pact not approved"):
        world.open(pid)


# -- expected versions ---------------------------------------------------------------------

@pytest.mark.parametrize("which", ["committee", "appeal"])
def test_open__unexpected_version__reverts(world, which):
    pid, t = world.create_pact()
    cv, av = world.versions(t)
    n = world.escrow.job_count()
    with boa.reverts("escrow: committee changed"):
        _open_raw(world, pid, cv + 1 if which == "committee" else cv, av + 1 if which == "appeal" else av)
    with boa.reverts("escrow: committee changed"):
        _open_raw(world, pid, cv - 1 if which == "committee" else cv, 0 if which == "appeal" else av)
    assert world.escrow.job_count() == n


def test_open__rotation_took_effect__old_expectation_reverts(world):
    pid, t = world.create_pact()
    cv, av = world.versions(t)
    new = new_actors(world, "n", 3)
    with boa.env.prank(world.admin.address):
        world.registry.propose_version(t.committee_id, [m.address for m in new], 2, 10 * E18, 5 * E18)
    world.warp(MIN_ROTATION_DELAY - 1)
    jid = _open_raw(world, pid, cv, av)  # still the old version at T - 1
    assert world.job(jid)["cv"] == cv
    world.warp(1)
    with boa.reverts("escrow: committee changed"):
        _open_raw(world, pid, cv, av)


def test_open__rotation__earlier_jobs_keep_their_version_new_jobs_bind_new(world):
    r = world.registry
    pid, t = world.create_pact()
    cv, av = world.versions(t)
    j1 = world.open(pid)
    new = new_actors(world, "n", 3)
    with boa.env.prank(world.admin.address):
        v2 = r.propose_version(t.committee_id, [m.address for m in new], 2, 10 * E18, 5 * E18)
    for m in new:
        with boa.env.prank(m.address):
            r.accept_version(v2)
            world.escrow.stake("0x" + "00" * 20, 20 * E18, True, value=20 * E18)
    world.warp(MIN_ROTATION_DELAY)
    assert world.versions(t) == (v2, av)
    j2 = world.open(pid)
    assert (world.job(j1)["cv"], world.job(j1)["av"]) == (cv, av)
    assert (world.job(j2)["cv"], world.job(j2)["av"]) == (v2, av)
    assert r.roster(world.job(j1)["cv"]).members == [m.address for m in world.evaluators]
    assert r.roster(world.job(j2)["cv"]).members == [m.address for m in new]


# -- parties, thresholds, overlap, appeal quorum --------------------------------------------

@pytest.mark.parametrize(("party", "side"), [("buyer", "committee"), ("agent", "committee"),
                                             ("buyer", "appeal"), ("agent", "appeal")])
def test_open__party_listed_as_evaluator__reverts(world, party, side):
    others = new_actors(world, f"x-{party}-{side}", 2)
    listed = [getattr(world, party), *others]
    # listed is enough: the party never accepted the version
    cid = world.create_committee(listed, 2, accept=False)
    over = {"committee_id": cid} if side == "committee" else {"appeal_committee_id": cid}
    pid, _ = world.create_pact(**over)
    n = world.escrow.job_count()
    with boa.reverts("escrow: party is evaluator"):
        world.open(pid)
    assert world.escrow.job_count() == n


def test_open__appeal_threshold_below_committee__reverts(world):
    acid = world.create_committee(new_actors(world, "a", 3), 1)
    pid, _ = world.create_pact(appeal_committee_id=acid)
    with boa.reverts("escrow: appeal threshold low"):
        world.open(pid)


def test_open__appeal_threshold_above_committee__opens(world):
    acid = world.create_committee(new_actors(world, "a", 3), 3)
    pid, _ = world.create_pact(appeal_committee_id=acid)
    assert world.job(world.open(pid))["state"] == OPEN


@pytest.mark.parametrize("accepted", [True, False])
def test_open__committees_overlap__reverts(world, accepted):
    # a member of the committee is listed in the appeal committee too (accepted there or not)
    shared, others = world.evaluators[1], new_actors(world, "a", 2)
    acid = world.create_committee([*others, shared], 2, accept=False)
    vid = world.registry.current_version(acid)
    for m in others + ([shared] if accepted else []):
        with boa.env.prank(m.address):
            world.registry.accept_version(vid)
    assert world.registry.roster(vid).accepted == (0b111 if accepted else 0b011)
    pid, _ = world.create_pact(appeal_committee_id=acid)
    with boa.reverts("escrow: committees overlap"):
        world.open(pid)


def test_open__unaccepted_committee_member_listed_in_appeal__overlap_reverts(world):
    # the committee's third member never accepted, yet it is listed: overlap counts listed members
    new = new_actors(world, "c", 3)
    cid = world.create_committee(new, 2, accept=False)
    vid = world.registry.current_version(cid)
    for m in new[:2]:
        with boa.env.prank(m.address):
            world.registry.accept_version(vid)
            world.escrow.stake("0x" + "00" * 20, 20 * E18, True, value=20 * E18)
    acid = world.create_committee([new[2], *new_actors(world, "a", 2)], 2)
    pid, _ = world.create_pact(committee_id=cid, appeal_committee_id=acid)
    with boa.reverts("escrow: committees overlap"):
        world.open(pid)
    # the same committee with a disjoint appeal committee opens (only the two accepted members reserved)
    pid2, _ = world.create_pact(committee_id=cid)
    assert world.job(world.open(pid2))["reserved"] == 0b011


def test_open__appeal_members_not_accepted__quorum_unavailable_reverts(world):
    acid = world.create_committee(new_actors(world, "a", 3), 2, accept=False)
    pid, _ = world.create_pact(appeal_committee_id=acid)
    with boa.reverts("escrow: appeal quorum unavailable"):
        world.open(pid)
    # one acceptance is still below the appeal threshold; the second makes the quorum
    a = new_actors(world, "a", 3)
    vid = world.registry.current_version(acid)
    with boa.env.prank(a[0].address):
        world.registry.accept_version(vid)
    with boa.reverts("escrow: appeal quorum unavailable"):
        world.open(pid)
    with boa.env.prank(a[2].address):
        world.registry.accept_version(vid)
    assert world.job(world.open(pid))["state"] == OPEN


def test_open__appeal_members_revoked__quorum_unavailable_reverts(world):
    pid, _ = world.create_pact()
    with boa.env.prank(world.appeal_evaluators[0].address):
        world.registry.revoke_key()
    jid = world.open(pid)  # two active of threshold two: still enough
    assert world.job(jid)["state"] == OPEN
    with boa.env.prank(world.appeal_evaluators[2].address):
        world.registry.revoke_key()
    with boa.reverts("escrow: appeal quorum unavailable"):
        world.open(pid)

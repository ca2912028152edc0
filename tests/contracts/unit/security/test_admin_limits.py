"""RELIABILITY C11: admin limits. Two-step ownership; every admin call emits an event; no admin
call changes a claim (stakes, credits, jobs, burned, pacts) and in-flight jobs finish under the
rules they were opened with; the escrow has no admin function at all (nothing to sweep with);
pause never blocks an exit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boa
import pytest

from tests.conftest import ROOT, actor
from tests.contracts.conftest import E18, ETH, HOUR, MIN_ROTATION_DELAY, WINDOW_MAX
from tests.contracts.unit.security.conftest import (
    ACCEPTED,
    CHALLENGED,
    OPEN,
    SETTLED,
    SUBMITTED,
    VERDICT,
    assert_books,
    call_as,
    everyone,
    pause,
    top_up_members,
)

ARTIFACTS = ROOT / "src" / "pactbond" / "artifacts"


def state_changing(name: str) -> set[str]:
    """Names of the state-changing entry points in the shipped ABI (what clients can call)."""
    abi = json.loads(Path(ARTIFACTS / f"{name}.json").read_text())["abi"]
    return {x.get("name", x["type"]) for x in abi
            if x["type"] in ("function", "fallback") and x["stateMutability"] in ("nonpayable", "payable")}


# the registry's entry points, by who may call them
OWNER_CALLS = {"transfer_ownership", "accept_ownership", "set_guardian", "set_paused",
               "set_asset_allowed", "set_escrow"}
COMMITTEE_ADMIN_CALLS = {"create_committee", "propose_version", "approve_pact"}
MEMBER_CALLS = {"accept_version", "revoke_key"}  # a member's own consent and revocation
ESCROW_CHECK = {"open_roster"}  # the checks of an open; writes only a cache of a fixed fact
# the escrow's: every one is a party's own action or a permissionless keeper step
ESCROW_CALLS = {"fallback", "create_pact", "stake", "withdraw_stake", "withdraw", "open",
                "open_with_permit", "accept", "submit", "settle", "finalize"}
# the appeals facet (its fallback reaches the batch facet), and the batch facet (ADR 011)
FACET_CALLS = {"fallback", "cancel", "expire", "challenge", "appeal", "resolve"}
BATCH_CALLS = {"settle_batch", "request_unstake", "withdraw_evaluator_stake"}


def test_abi__every_entry_point_is_classified__escrow_has_no_admin_function():
    assert state_changing("PactRegistry") == OWNER_CALLS | COMMITTEE_ADMIN_CALLS | MEMBER_CALLS | ESCROW_CHECK
    assert state_changing("PactEscrow") == ESCROW_CALLS
    assert state_changing("PactEscrowAppeals") == FACET_CALLS
    assert state_changing("PactEscrowBatch") == BATCH_CALLS
    escrow_src = "".join((ROOT / "contracts" / f).read_text() for f in (
        "PactEscrow.vy", "PactEscrowAppeals.vy", "PactEscrowBatch.vy", "modules/escrow_core.vy"))
    # no owner, guardian or pause state in the money contracts: pause is read from the registry
    # by open and accept only
    assert "owner()" not in escrow_src and "guardian" not in escrow_src
    assert escrow_src.count(".paused()") == 1  # accept (open checks it inside open_roster)


def test_registry__every_admin_and_member_call__emits_its_event(world, erc20_deployer):
    r = world.registry
    tok = erc20_deployer.deploy("T", "T", 18, 0)
    pid, t = world.create_pact(approve=False)
    new_owner = actor("new-owner")
    fresh = boa.load_partial(str(ROOT / "contracts" / "PactRegistry.vy"))
    with boa.env.prank(world.owner.address):
        fresh_r = fresh.deploy(WINDOW_MAX, MIN_ROTATION_DELAY)
    m = actor("member-x")
    world.fund(m)
    calls: dict[str, tuple[Any, Any, tuple[Any, ...], str]] = {
        "transfer_ownership": (world.owner, r.transfer_ownership, (new_owner.address,), "OwnershipTransferStarted"),
        "accept_ownership": (new_owner, r.accept_ownership, (), "OwnershipTransferred"),
        "set_guardian": (new_owner, r.set_guardian, (world.attacker.address,), "GuardianSet"),
        "set_paused": (world.attacker, r.set_paused, (False,), "PausedSet"),
        "set_asset_allowed": (new_owner, r.set_asset_allowed, (tok.address, True), "AssetAllowed"),
        "set_escrow": (world.owner, fresh_r.set_escrow, (world.escrow.address,), "EscrowSet"),
        "create_committee": (world.admin, r.create_committee, (ETH, HOUR, [m.address], 1, E18, E18), "CommitteeCreated"),
        "propose_version": (world.admin, r.propose_version, (world.committee_id, [m.address], 1, E18, E18), "VersionProposed"),
        "accept_version": (m, r.accept_version, (r.version_count(),), "VersionAccepted"),
        "revoke_key": (m, r.revoke_key, (), "KeyRevoked"),
        "approve_pact": (world.admin, r.approve_pact, (t.committee_id, pid, t.as_tuple()), "PactApproved"),
    }
    assert set(calls) == OWNER_CALLS | COMMITTEE_ADMIN_CALLS | MEMBER_CALLS
    for name, (who, fn, args, event) in calls.items():
        if name == "accept_version":  # the version proposed just above
            args = (r.version_count(),)
        call_as(who, fn, *args)
        emitter = fresh_r if name == "set_escrow" else r
        emitted = [type(e).__name__ for e in emitter.get_logs()]
        assert event in emitted, (name, emitted)


def test_two_step_ownership__pending_owner_powerless_until_it_accepts(world):
    r, new = world.registry, actor("next-owner")
    call_as(world.owner, r.transfer_ownership, new.address)
    with boa.reverts("admin: not owner"):
        call_as(new, r.set_guardian, new.address)
    call_as(world.owner, r.set_guardian, world.guardian.address)  # still the owner's
    call_as(new, r.accept_ownership)
    with boa.reverts("admin: not owner"):
        call_as(world.owner, r.set_guardian, world.owner.address)
    with boa.reverts("admin: not pending owner"):
        call_as(new, r.accept_ownership)  # the pending slot is cleared
    assert (r.owner(), r.pending_owner()) == (new.address, "0x" + "00" * 20)


def claims(world: Any, extra: tuple[Any, ...] = ()) -> dict[str, Any]:
    """Every claim the escrow records, and its balance."""
    esc = world.escrow
    out: dict[str, Any] = {"balance": boa.env.get_balance(esc.address), "burned": esc.burned(ETH),
                           "job_count": esc.job_count(), "pact_count": esc.pact_count()}
    for a in everyone(world, extra):
        out[a.address] = (esc.agent_stake(a.address, ETH), esc.evaluator_stake(a.address, ETH),
                          esc.credits(a.address, ETH), esc.agent_counts(a.address))
    for jid in range(1, esc.job_count() + 1):
        out[f"job{jid}"] = esc.job(jid)
    for pid in range(1, esc.pact_count() + 1):
        out[f"pact{pid}"] = (esc.pact_hash(pid), esc.pact_owner(pid), esc.pact_counts(pid),
                             esc.exposure(world.agent.address, pid))
    return out


def test_admin_calls__change_no_claim__in_flight_jobs_finish_under_their_own_rules(world, erc20_deployer):
    esc, r = world.escrow, world.registry
    pid, t = world.create_pact(eval_window=4 * HOUR, challenge_window=4 * HOUR, appeal_window=4 * HOUR)
    world.stake_agent(10 * E18)
    top_up_members(world)
    jobs = {}
    jobs[OPEN] = world.open(pid, value=E18 // 10)
    jobs[ACCEPTED] = world.open(pid, value=E18 // 10)
    world.accept(jobs[ACCEPTED])
    for s in (SUBMITTED, VERDICT, CHALLENGED):
        jobs[s] = world.open(pid, value=E18 // 10)
        world.accept(jobs[s])
        world.submit(jobs[s])
    world.settle(jobs[VERDICT], [world.vote(m, jobs[VERDICT], 9000) for m in world.evaluators[:2]])
    world.settle(jobs[CHALLENGED], [world.vote(m, jobs[CHALLENGED], 9000) for m in world.evaluators])
    world.warp(1)
    call_as(world.buyer, world.facet.challenge, jobs[CHALLENGED], t.as_tuple(), 9000, value=t.challenge_bond)
    assert [world.job(j)["state"] for j in jobs.values()] == list(jobs)
    before = claims(world)
    # every admin call there is, by every admin role
    tok = erc20_deployer.deploy("T", "T", 18, 0)
    newcomers = [actor(f"new-member-{i}") for i in range(3)]
    world.fund(*newcomers)
    new_owner = actor("new-owner")
    call_as(world.owner, r.transfer_ownership, new_owner.address)
    call_as(new_owner, r.accept_ownership)
    call_as(new_owner, r.set_guardian, world.attacker.address)
    call_as(world.attacker, r.set_paused, True)
    call_as(new_owner, r.set_asset_allowed, tok.address, True)
    call_as(new_owner, r.set_asset_allowed, tok.address, False)
    call_as(world.admin, r.propose_version, world.committee_id, [m.address for m in newcomers], 2, 10 * E18, 5 * E18)
    call_as(world.admin, r.propose_version, world.appeal_committee_id, [m.address for m in newcomers[:2]] + [actor("x").address], 3, E18, E18)
    assert claims(world) == before  # while paused
    call_as(world.attacker, r.set_paused, False)
    pid2, t2 = world.create_pact(approve=False)
    call_as(world.admin, r.approve_pact, t2.committee_id, pid2, t2.as_tuple())
    call_as(world.admin, r.create_committee, ETH, HOUR, [newcomers[0].address], 1, E18, E18)
    world.warp(MIN_ROTATION_DELAY)  # the rotations take effect
    after = claims(world)
    assert {k: after[k] for k in before if k != "pact_count"} == {k: before[k] for k in before if k != "pact_count"}
    assert after["pact_count"] == before["pact_count"] + 1
    assert world.versions(t) != (world.job(jobs[OPEN])["cv"], world.job(jobs[OPEN])["av"])
    # the in-flight jobs finish under their own committee versions: the old members' votes
    # count, the newcomers' do not
    with boa.reverts("vote: member not reserved"):
        world.settle(jobs[SUBMITTED], [world.vote(newcomers[0], jobs[SUBMITTED], 1000)])
    world.settle(jobs[SUBMITTED], [world.vote(m, jobs[SUBMITTED], 1000) for m in world.evaluators])
    world.appeal(jobs[CHALLENGED], [world.vote(m, jobs[CHALLENGED], 2000, round_=1) for m in world.appeal_evaluators])
    call_as(world.attacker, world.facet.resolve, jobs[CHALLENGED], t.as_tuple())
    call_as(world.attacker, world.facet.cancel, jobs[OPEN], t.as_tuple())  # past its accept window
    world.warp(t.work_window + 1)
    call_as(world.attacker, world.facet.expire, jobs[ACCEPTED], t.as_tuple())
    call_as(world.attacker, esc.finalize, jobs[VERDICT], t.as_tuple())
    call_as(world.attacker, esc.finalize, jobs[SUBMITTED], t.as_tuple())
    assert all(world.job(j)["state"] >= SETTLED for j in jobs.values())
    assert_books(world, extra=tuple(newcomers))


def test_admin_roles__hold_no_claim__cannot_take_a_wei(world):
    """The owner, guardian and committee admin own nothing in the escrow: every way money
    leaves refuses them (and a keeper step pays the parties, never the caller)."""
    pid, _ = world.create_pact()
    world.open(pid)
    bal = boa.env.get_balance(world.escrow.address)
    for who in (world.owner, world.guardian, world.admin):
        with boa.reverts("escrow: nothing to withdraw"):
            call_as(who, world.escrow.withdraw, ETH)
        with boa.reverts("stake: exceeds free stake"):
            call_as(who, world.escrow.withdraw_stake, ETH, 1)
        with boa.reverts("stake: nothing pending"):
            call_as(who, world.escrow.withdraw_evaluator_stake, ETH)
    assert boa.env.get_balance(world.escrow.address) == bal


@pytest.mark.parametrize("who", ["guardian", "committee-admin", "attacker"])
def test_non_owner__owner_calls__refused(world, who):
    r = world.registry
    a = {"guardian": world.guardian, "committee-admin": world.admin, "attacker": world.attacker}[who]
    for fn, args in ((r.transfer_ownership, (a.address,)), (r.set_guardian, (a.address,)),
                     (r.set_asset_allowed, (world.escrow.address, True))):
        with boa.reverts("admin: not owner"):
            call_as(a, fn, *args)
    if who != "guardian":
        with boa.reverts("admin: not guardian"):
            call_as(a, r.set_paused, True)


# -- pause never blocks an exit ---------------------------------------------------------------------

def test_pause__blocks_open_accept_and_creation_only__every_exit_and_vote_works(world):
    esc, fac = world.escrow, world.facet
    pid, t = world.create_pact()
    pid0, _ = world.create_pact(challenge_window=0, appeal_window=0)
    world.stake_agent(10 * E18)
    top_up_members(world)
    v = E18 // 10
    open_ = world.open(pid, v)  # cancelled while paused
    acc = world.open(pid, v)  # expired (no delivery) while paused
    world.accept(acc)
    sub = world.open(pid, v)  # submitted while paused, then settled
    world.accept(sub)
    sil = world.open(pid, v)  # silence expiry while paused
    world.accept(sil)
    world.submit(sil)
    ch = world.open(pid, v)  # challenged, appealed, resolved while paused
    world.accept(ch)
    world.submit(ch)
    z = world.open(pid0, v)  # a zero-window job settled by its closing vote while paused
    world.accept(z)
    world.submit(z)
    e = world.evaluators[0]
    call_as(e, esc.request_unstake, ETH, E18)
    pause(world)
    # refused while paused
    with boa.reverts("escrow: paused"):
        world.open(pid, v)
    with boa.reverts("escrow: paused"):
        world.accept(open_)
    with boa.reverts("escrow: paused"):
        world.create_pact()
    with boa.reverts("escrow: paused"):
        world.create_committee([actor("p")], 1)
    # everything else works
    call_as(world.buyer, fac.cancel, open_, t.as_tuple())
    world.submit(sub)
    world.settle(sub, [world.vote(m, sub, 9000) for m in world.evaluators[:2]])
    world.settle(sub, [world.vote(world.evaluators[2], sub, 9000)])  # add a vote: early close
    world.settle(ch, [world.vote(m, ch, 9000) for m in world.evaluators])
    world.settle(z, [world.vote(m, z, 9000) for m in world.evaluators])
    assert world.job(z)["state"] == SETTLED
    world.warp(1)
    call_as(world.buyer, fac.challenge, ch, t.as_tuple(), 9000, value=t.challenge_bond)
    world.appeal(ch, [world.vote(m, ch, 2000, round_=1) for m in world.appeal_evaluators])
    call_as(world.attacker, fac.resolve, ch, t.as_tuple())
    world.warp(t.work_window + 1)
    call_as(world.attacker, fac.expire, acc, t.as_tuple())
    call_as(world.attacker, fac.expire, sil, t.as_tuple())
    call_as(world.attacker, esc.finalize, sub, t.as_tuple())
    assert {world.job(j)["state"] for j in (open_, acc, sub, sil, ch)} == {7, 8, 6, 9}
    for who in (world.buyer, *world.evaluators, *world.appeal_evaluators, world.insurance):
        if esc.credits(who.address, ETH):
            call_as(who, esc.withdraw, ETH)
    call_as(world.agent, esc.withdraw_stake, ETH, esc.agent_stake(world.agent.address, ETH)[0])
    call_as(e, esc.request_unstake, ETH, E18)
    world.warp(esc.EVALUATOR_COOLDOWN())
    call_as(e, esc.withdraw_evaluator_stake, ETH)
    assert world.registry.paused() is True
    assert_books(world)

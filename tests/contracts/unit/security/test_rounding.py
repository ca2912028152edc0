"""RELIABILITY C13: rounding. One agent's stake goes through 100 random partial slashes (tiny
values, random bond and slash bps, bond caps and slash shares; half as no delivery, half as fail
verdicts), then a final slash of everything left: every slash is ceil(bond x slash_bps) and is
split to the wei, slashed + returned == stake exactly, and the keeper who triggers each
settlement never gains a wei. PACTBOND_ROUNDING_SLASHES overrides the 100."""

from __future__ import annotations

import os
import random
from typing import Any

import boa

from pactbond import eip712, money
from pactbond.models import Vote
from tests.contracts.conftest import ETH
from tests.contracts.unit.security.conftest import (
    assert_books,
    call_as,
)

SLASHES = int(os.environ.get("PACTBOND_ROUNDING_SLASHES", "100"))
STAKE = 10**9 + 7  # wei: small enough that the slashes add up to a visible share of it


def random_pact(world: Any, rng: random.Random) -> tuple[int, Any]:
    buyer_bps = rng.randrange(10_001)
    ins_bps = rng.randrange(10_001 - buyer_bps)
    fail_below = rng.randrange(1, 10_001)
    return world.create_pact(
        bond_bps=rng.choice((1, 2, 3, 999, 3_333, 5_000, 6_667, 9_999, 10_000, rng.randrange(1, 10_001))),
        slash_bps=rng.choice((1, 2, 3, 999, 3_333, 5_000, 6_667, 9_999, 10_000, rng.randrange(1, 10_001))),
        bond_cap=rng.choice((1, 7, 10**3, 10**6, 10**18)),
        slash_buyer_bps=buyer_bps, slash_insurance_bps=ins_bps,
        slash_burn_bps=10_000 - buyer_bps - ins_bps,
        fail_below_bps=fail_below, pass_at_bps=rng.randrange(fail_below, 10_001),
        evaluator_fee=rng.randrange(0, 101), challenge_window=0, appeal_window=0,
        cap_initial=10**18, cap_step=0, cap_max=10**18,
    )


class Driver:
    """Drives jobs with raw calls and cached terms and versions (the world's helpers re-read
    the job for every step, which is most of the time at this count)."""

    def __init__(self, world: Any) -> None:
        self.w = world
        self.versions: dict[int, tuple[int, int]] = {}
        self.domain = world.domain()

    def fail_job(self, pid: int, t: Any, value: int, no_delivery: bool) -> None:
        """Open, accept, then end the job as a no delivery or as a fail verdict; the keeper
        (the attacker account) triggers the end."""
        w, esc, terms = self.w, self.w.escrow, t.as_tuple()
        if pid not in self.versions:
            self.versions[pid] = w.versions(t)
        cv, av = self.versions[pid]
        jid = call_as(w.buyer, esc.open, terms, pid, w.agent.address, value, cv, av,
                      value=value + t.evaluator_fee)
        call_as(w.agent, esc.accept, jid, terms)
        if no_delivery:
            w.warp(t.work_window + 1)
            call_as(w.attacker, w.facet.expire, jid, terms)
            return
        deliverable = jid.to_bytes(32, "big")
        call_as(w.agent, esc.submit, jid, terms, deliverable, "")
        deadline = w.now() + t.eval_window
        score = t.fail_below_bps - 1
        votes = []
        for m in w.evaluators:
            v = Vote(job_id=jid, deliverable_hash=deliverable, spec_hash=t.spec_hash, score_bps=score,
                     evidence_hash=b"\x0e" * 32, round=0, deadline=deadline)
            sig = eip712.sign_digest(m.key, eip712.digest(self.domain, eip712.vote_struct_hash(v)))
            votes.append((m.address, score, v.evidence_hash, deadline, sig))
        call_as(w.attacker, esc.settle, jid, terms, votes)  # closes round 0: settles at once


def test_rounding__100_random_partial_slashes_then_a_final_one__slashed_plus_returned_is_stake(world):
    rng = random.Random(13)
    esc = world.escrow
    drive = Driver(world)
    world.stake_agent(STAKE)
    pacts = [random_pact(world, rng) for _ in range(12)]
    keeper = world.attacker
    keeper_eth = boa.env.get_balance(keeper.address)
    total_slashed = 0
    partial = 0
    for i in range(SLASHES):
        pid, t = pacts[i % len(pacts)]
        value = rng.choice((1, 2, 3, 7, 10, 99, 101, 9_999, rng.randrange(1, 10**6)))
        bond, cut = money.bond(t, value), money.slashed(t, value)
        assert cut <= bond
        free0 = esc.agent_stake(world.agent.address, ETH)[0]
        if bond > free0:
            continue  # the agent cannot cover this bond any more
        shares0 = (esc.credits(world.buyer.address, ETH), esc.credits(world.insurance.address, ETH),
                   esc.burned(ETH))
        drive.fail_job(pid, t, value, no_delivery=i % 2 == 0)
        free1, locked1 = esc.agent_stake(world.agent.address, ETH)
        assert (free0 - free1, locked1) == (cut, 0)  # the bond came back less exactly the slash
        to_buyer, to_ins, to_burn = money.slash_split(t, cut)
        d_buyer = esc.credits(world.buyer.address, ETH) - shares0[0]
        refund = value + t.evaluator_fee if i % 2 == 0 else value + t.evaluator_fee % 3
        assert d_buyer == refund + to_buyer
        assert esc.credits(world.insurance.address, ETH) - shares0[1] == to_ins
        assert esc.burned(ETH) - shares0[2] == to_burn
        assert to_buyer + to_ins + to_burn == cut
        total_slashed += cut
        partial += 0 < cut < bond
        if i % 10 == 0:
            assert esc.credits(keeper.address, ETH) == 0
            assert boa.env.get_balance(keeper.address) == keeper_eth
    assert_books(world)
    # the final one: a bond of everything left, partly slashed; the rest is returned and leaves
    left = esc.agent_stake(world.agent.address, ETH)[0]
    pid, t = world.create_pact(bond_bps=10_000, slash_bps=3_333, bond_cap=left, evaluator_fee=0,
                               challenge_window=0, appeal_window=0, cap_initial=10**18,
                               cap_step=0, cap_max=10**18)
    drive.fail_job(pid, t, left, no_delivery=True)
    total_slashed += money.ceil_div(left * 3_333, 10_000)
    returned = esc.agent_stake(world.agent.address, ETH)[0]
    agent_eth = boa.env.get_balance(world.agent.address)
    call_as(world.agent, esc.withdraw_stake, ETH, returned)
    assert boa.env.get_balance(world.agent.address) - agent_eth == returned
    assert esc.agent_stake(world.agent.address, ETH) == (0, 0)
    assert total_slashed + returned == STAKE
    assert total_slashed == esc.agent_money(world.agent.address, ETH) >> 128  # the slashed counter
    assert partial >= SLASHES // 10  # many slashes took a part of the bond (ceil at work)
    assert esc.credits(keeper.address, ETH) == 0
    assert boa.env.get_balance(keeper.address) == keeper_eth
    assert_books(world)

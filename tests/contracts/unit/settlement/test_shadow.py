"""Shadow pacts: the verdict moves no job money, but counters, exposure, Feedback and the
challenge economics are real."""

import boa
import pytest

from pactbond import money
from tests.contracts.conftest import E18, EVAL_PENALTY
from tests.contracts.unit.settlement.conftest import (
    C_CHALLENGES,
    C_FAILED,
    C_NO_DELIVERY,
    C_PARTIAL,
    C_PASSED,
    C_SETTLED,
    C_SEVENTH,
    SETTLED,
    agent_lanes,
    assert_balanced,
    assert_settlement,
    challenge,
    delta,
    events,
    finalize_after_window,
    money_split,
    pact_lanes,
    resolve,
    snapshot,
    to_verdict,
    votes_for,
    warp_to,
)


def shadow_pact(world, **over):
    return world.create_pact(shadow=True, bond_bps=0, slash_bps=0, **over)


@pytest.mark.parametrize(("score", "band"), [(9000, C_PASSED), (6500, C_PARTIAL), (1000, C_FAILED)])
def test_finalize__shadow_any_band__value_to_agent_verdict_recorded(world, score, band):
    pid, t = shadow_pact(world)
    value = E18
    jid = to_verdict(world, pid, [score] * 3, value=value)
    assert world.escrow.agent_stake(world.agent.address, t.asset) == (10 * E18, 0)  # no bond
    before = snapshot(world)
    logs = finalize_after_window(world, jid)
    d = delta(snapshot(world), before)
    assert d["free"] == value
    assert d["buyer"] == t.evaluator_fee - 3 * (t.evaluator_fee // 3)
    assert d["insurance"] == d["burned"] == 0
    assert_settlement(d, money.settle(t, value, score, 3), 0, (0, 1, 2))
    assert agent_lanes(world)[band] == 1 and agent_lanes(world)[C_SETTLED] == 1
    assert pact_lanes(world, pid)[band] == 1
    assert money_split(world.escrow.agent_money(world.agent.address, t.asset)) == (value, 0)
    [fb] = events(logs, "Feedback")
    assert fb.score_bps == score
    assert_balanced(world)


def test_accept__shadow_pact__agent_without_stake_accepts_and_is_paid(world):
    pid, t = shadow_pact(world)
    jid = to_verdict(world, pid, [1000] * 3, value=E18, stake=0)
    assert world.escrow.agent_stake(world.agent.address, t.asset) == (0, 0)
    finalize_after_window(world, jid)
    assert world.escrow.agent_stake(world.agent.address, t.asset) == (E18, 0)
    assert_balanced(world)


def test_finalize__shadow_pass_then_fail__cap_raised_then_reset(world):
    pid, _t = shadow_pact(world)
    jid = to_verdict(world, pid, [9000] * 3, value=E18 // 2)
    finalize_after_window(world, jid)
    assert world.escrow.exposure(world.agent.address, pid) == (0, E18 // 2)
    jid = to_verdict(world, pid, [1000] * 3, value=E18 // 2, stake=0)
    finalize_after_window(world, jid)
    assert world.escrow.exposure(world.agent.address, pid) == (0, 0)
    assert agent_lanes(world)[C_FAILED] == 1
    assert_balanced(world)


def test_expire__shadow_no_delivery__refund_nothing_slashed_cap_reset(world):
    pid, t = shadow_pact(world)
    jid = to_verdict(world, pid, [9000] * 3, value=E18 // 2)
    finalize_after_window(world, jid)
    jid = world.open(pid, value=E18)
    world.accept(jid)
    warp_to(world, world.job(jid)["deadline"] + 1)
    before = snapshot(world)
    with boa.env.prank(world.attacker.address):
        world.facet.expire(jid, t.as_tuple())
    d = delta(snapshot(world), before)
    assert d["buyer"] == E18 + t.evaluator_fee
    assert d["free"] == d["burned"] == d["insurance"] == 0
    assert agent_lanes(world)[C_NO_DELIVERY] == 1
    assert world.escrow.exposure(world.agent.address, pid) == (0, 0)
    assert_balanced(world)


def test_resolve__shadow_buyer_overturns_pass__bond_fee_penalties_real_job_money_unchanged(world):
    pid, t = shadow_pact(world)
    r0, r1 = [9000, 8500, 4000], [3000, 3000, 3000]
    jid = to_verdict(world, pid, r0, value=E18)
    challenge(world, jid, world.buyer)
    before = snapshot(world)
    world.appeal(jid, votes_for(world, jid, r1, round_=1))
    logs = resolve(world, jid)
    assert world.job(jid)["state"] == SETTLED
    d = delta(snapshot(world), before)
    a = money.appeal(t, 8500, r0, r1, 2, "buyer")
    assert (a.overturned, a.challenger_won, a.penalized) == (True, True, [0, 1])
    s = money.settle(t, E18, 3000, 3)
    assert s.to_agent == E18  # shadow: the value goes to the agent
    assert d["free"] == E18
    assert d["appeal"] == [t.appeal_fee // 3] * 3
    assert d["buyer"] == a.to_challenger + 2 * EVAL_PENALTY + s.to_buyer
    assert d["stakes"] == [(-EVAL_PENALTY, -EVAL_PENALTY)] * 2 + [(0, -EVAL_PENALTY)]
    assert d["burned"] == d["insurance"] == 0
    [fb] = events(logs, "Feedback")
    assert fb.score_bps == 3000
    assert agent_lanes(world)[C_FAILED] == 1
    assert pact_lanes(world, pid)[C_SEVENTH] == 1 and pact_lanes(world, pid)[C_CHALLENGES] == 1
    assert world.escrow.exposure(world.agent.address, pid) == (0, 0)
    assert_balanced(world)


def test_resolve__shadow_agent_challenge_lost__bond_split_job_money_unchanged(world):
    pid, t = shadow_pact(world)
    r0, r1 = [6000, 6500, 7000], [6600, 6600, 6600]
    jid = to_verdict(world, pid, r0, value=E18)
    challenge(world, jid, world.agent)
    before = snapshot(world)
    world.appeal(jid, votes_for(world, jid, r1, round_=1))
    resolve(world, jid)
    d = delta(snapshot(world), before)
    a = money.appeal(t, 6500, r0, r1, 2, "agent")
    assert not a.overturned and not a.challenger_won
    rest = t.challenge_bond - t.appeal_fee
    assert d["free"] == E18
    assert d["agent"] == 0
    assert d["buyer"] == rest // 2 + t.evaluator_fee - 3 * (t.evaluator_fee // 3)
    assert d["burned"] == rest - rest // 2
    assert agent_lanes(world)[C_SEVENTH] == 1 and agent_lanes(world)[C_PARTIAL] == 1
    assert_balanced(world)


def test_create_pact__shadow_with_bond__refused(world):
    with boa.env.prank(world.pact_owner.address), \
            boa.reverts("pact: shadow pact takes no bond or slash"):
        world.escrow.create_pact(world.terms(shadow=True, bond_bps=1, slash_bps=0).as_tuple())

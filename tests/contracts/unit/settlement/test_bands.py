"""Bands and pay: what a finalized job moves, by DESIGN's "Money of one job" and pactbond.money."""

import boa
import pytest

from pactbond import money
from tests.contracts.conftest import E18, EVAL_PENALTY
from tests.contracts.unit.settlement.conftest import (
    C_FAILED,
    C_NO_DELIVERY,
    C_NO_VERDICT,
    C_PARTIAL,
    C_PASSED,
    C_SETTLED,
    SETTLED,
    agent_lanes,
    assert_balanced,
    assert_settlement,
    delta,
    ev_stake,
    events,
    evidence_of,
    finalize_after_window,
    money_split,
    pact_lanes,
    snapshot,
    submitted,
    to_verdict,
    votes_for,
    warp_to,
)


def settle_job(world, pid, scores, value=E18):
    """Verdict from `scores`, then finalize after the challenge window; returns (jid, delta)."""
    jid = to_verdict(world, pid, scores, value=value)
    before = snapshot(world)
    finalize_after_window(world, jid)
    assert world.job(jid)["state"] == SETTLED
    return jid, delta(snapshot(world), before)


def test_finalize__pass__full_value_to_agent_and_bond_unlocked(world):
    pid, t = world.create_pact()
    value = E18
    _jid, d = settle_job(world, pid, [9000, 8500, 8000], value)
    bond = value * 2000 // 10_000  # ceil is exact here
    assert d["free"] == value + bond
    assert d["locked"] == -bond
    assert world.escrow.agent_stake(world.agent.address, t.asset) == (10 * E18 + value, 0)
    fee_each = t.evaluator_fee // 3
    assert d["voters"] == [fee_each] * 3
    assert d["buyer"] == t.evaluator_fee - 3 * fee_each
    assert d["insurance"] == d["burned"] == 0
    assert_settlement(d, money.settle(t, value, 8500, 3), bond, (0, 1, 2))
    assert_balanced(world)


def test_finalize__partial__linear_floor_pay_rest_to_buyer_no_slash(world):
    pid, t = world.create_pact()
    value = E18 - 1
    _jid, d = settle_job(world, pid, [6000, 6501, 7000], value)
    p = 10_000 * (6501 - 5000) // 3000  # 5003
    assert p == money.pay(t, 6501) == 5003
    to_agent = value * p // 10_000
    bond = -(-value * 2000 // 10_000)
    assert d["free"] == to_agent + bond
    assert d["locked"] == -bond
    assert d["buyer"] == value - to_agent + t.evaluator_fee - 3 * (t.evaluator_fee // 3)
    assert d["insurance"] == d["burned"] == 0
    assert_settlement(d, money.settle(t, value, 6501, 3), bond, (0, 1, 2))
    assert_balanced(world)


def test_finalize__fail__refund_and_slash_split_rest_of_bond_to_free_stake(world):
    pid, t = world.create_pact()
    value = E18
    _jid, d = settle_job(world, pid, [1000, 4000, 4999], value)
    bond = 2 * E18 // 10
    slash = bond * 5000 // 10_000
    ins, burn = slash * 3000 // 10_000, slash * 2000 // 10_000
    assert d["free"] == bond - slash
    assert d["locked"] == -bond
    assert d["buyer"] == value + (slash - ins - burn) + t.evaluator_fee - 3 * (t.evaluator_fee // 3)
    assert d["insurance"] == ins
    assert d["burned"] == burn
    assert_settlement(d, money.settle(t, value, 4000, 3), bond, (0, 1, 2))
    assert_balanced(world)


def test_finalize__fail_with_uneven_slash__floor_shares_remainder_to_buyer(world):
    pid, t = world.create_pact(slash_buyer_bps=3334, slash_insurance_bps=3333, slash_burn_bps=3333)
    value = E18 + 7
    _jid, d = settle_job(world, pid, [0, 0, 0], value)
    bond = -(-value * 2000 // 10_000)
    slash = -(-bond * 5000 // 10_000)
    assert (bond, slash) == (2 * E18 // 10 + 2, E18 // 10 + 1)
    ins, burn = slash * 3333 // 10_000, slash * 3333 // 10_000
    to_buyer_slash = slash - ins - burn
    assert to_buyer_slash > slash * 3334 // 10_000  # the remainder went to the buyer
    assert d["insurance"] == ins and d["burned"] == burn
    assert d["buyer"] == value + to_buyer_slash + t.evaluator_fee - 3 * (t.evaluator_fee // 3)
    assert d["free"] == bond - slash
    assert_settlement(d, money.settle(t, value, 0, 3), bond, (0, 1, 2))
    assert_balanced(world)


def test_finalize__fail_with_bond_cap__slash_taken_from_capped_bond(world):
    pid, t = world.create_pact(bond_cap=E18 // 20)
    value = E18
    _jid, d = settle_job(world, pid, [100, 200, 300], value)
    bond = E18 // 20
    assert money.bond(t, value) == bond
    slash = bond // 2
    assert d["locked"] == -bond
    assert d["free"] == bond - slash
    assert d["insurance"] + d["burned"] + (d["buyer"] - value - 1) == slash
    assert_settlement(d, money.settle(t, value, 200, 3), bond, (0, 1, 2))
    assert_balanced(world)


def test_finalize__fail_with_full_slash__no_bond_back(world):
    pid, t = world.create_pact(slash_bps=10_000, slash_buyer_bps=0, slash_insurance_bps=0,
                               slash_burn_bps=10_000)
    value = E18
    _jid, d = settle_job(world, pid, [100, 200, 300], value)
    bond = E18 // 5
    assert d["free"] == 0
    assert d["locked"] == -bond
    assert d["burned"] == bond
    assert d["buyer"] == value + t.evaluator_fee - 3 * (t.evaluator_fee // 3)
    assert_settlement(d, money.settle(t, value, 200, 3), bond, (0, 1, 2))
    assert_balanced(world)


@pytest.mark.parametrize(("score", "band", "pay_bps"), [
    (4999, C_FAILED, 0),        # fail_below - 1
    (5000, C_PARTIAL, 0),       # fail_below: partial that pays nothing, no slash
    (7999, C_PARTIAL, 9996),    # pass_at - 1: floor(10000 * 2999 / 3000)
    (8000, C_PASSED, 10_000),   # pass_at
])
def test_finalize__band_boundaries__band_pay_and_slash(world, score, band, pay_bps):
    pid, t = world.create_pact()
    value = 3 * E18 // 2
    assert money.pay(t, score) == pay_bps
    _jid, d = settle_job(world, pid, [score] * 3, value)
    bond = 3 * E18 // 10
    to_agent = value * pay_bps // 10_000
    slash = bond // 2 if band == C_FAILED else 0
    assert d["free"] == to_agent + bond - slash
    assert d["insurance"] == slash * 3000 // 10_000
    assert d["burned"] == slash * 2000 // 10_000
    lanes_ = agent_lanes(world)
    assert lanes_[band] == 1 and lanes_[C_SETTLED] == 1
    assert sum(lanes_[C_PASSED:C_FAILED + 1]) == 1
    assert_settlement(d, money.settle(t, value, score, 3), bond, (0, 1, 2))
    assert_balanced(world)


@pytest.mark.parametrize(("score", "band"), [(5999, C_FAILED), (6000, C_PASSED)])
def test_finalize__fail_below_equals_pass_at__no_partial_band(world, score, band):
    pid, t = world.create_pact(fail_below_bps=6000, pass_at_bps=6000)
    value = E18
    _jid, d = settle_job(world, pid, [score] * 3, value)
    bond = E18 // 5
    if band == C_PASSED:
        assert d["free"] == value + bond
    else:
        assert d["free"] == bond - bond // 2
        assert d["buyer"] == value + bond // 4 + 1  # slash buyer half + fee remainder
    assert agent_lanes(world)[band] == 1
    assert agent_lanes(world)[C_PARTIAL] == 0
    assert_settlement(d, money.settle(t, value, score, 3), bond, (0, 1, 2))
    assert_balanced(world)


def test_finalize__two_voters_fee_not_divisible__floor_each_remainder_to_buyer(world):
    fee = E18 // 100 + 1
    pid, t = world.create_pact(evaluator_fee=fee)
    value = E18
    jid = submitted(world, pid, value)
    world.settle(jid, votes_for(world, jid, [9000, 8200]))  # evaluator 2 stays silent
    before = snapshot(world)
    finalize_after_window(world, jid)
    d = delta(snapshot(world), before)
    assert d["voters"] == [fee // 2, fee // 2, 0]
    assert d["buyer"] == 1  # fee - 2 * floor(fee / 2)
    assert world.escrow.median_score(jid, 0) == 8600
    assert_settlement(d, money.settle(t, value, 8600, 2), E18 // 5, (0, 1))
    # the silent member's reservation is released too (it is not evaluator silence)
    assert ev_stake(world, world.evaluators[2])[:2] == (20 * E18, 0)
    assert_balanced(world)


def test_finalize__three_voters_fee_not_divisible__floor_each_remainder_to_buyer(world):
    fee = E18 // 100 + 1
    pid, t = world.create_pact(evaluator_fee=fee)
    _jid, d = settle_job(world, pid, [9000, 8200, 8100])
    assert fee % 3 == 2
    assert d["voters"] == [fee // 3] * 3
    assert d["buyer"] == 2
    assert_settlement(d, money.settle(t, E18, 8200, 3), E18 // 5, (0, 1, 2))
    assert_balanced(world)


def test_finalize__zero_fee__no_voter_credit(world):
    pid, _t = world.create_pact(evaluator_fee=0)
    _jid, d = settle_job(world, pid, [9000, 8200, 8100])
    assert d["voters"] == [0, 0, 0]
    assert d["buyer"] == 0
    assert_balanced(world)


def test_finalize__even_vote_count__median_is_floor_of_middle_mean(world):
    pid, t = world.create_pact()
    jid = submitted(world, pid, E18)
    world.settle(jid, votes_for(world, jid, [7999, 8000]))
    warp_to(world, world.job(jid)["deadline"] + t.challenge_window + 1)
    before = snapshot(world)
    with boa.env.prank(world.attacker.address):
        world.escrow.finalize(jid, t.as_tuple())
    d = delta(snapshot(world), before)
    # median 7999 (floor of 7999.5): partial, not pass
    assert d["free"] == E18 * 9996 // 10_000 + E18 // 5
    assert agent_lanes(world)[C_PARTIAL] == 1
    assert_balanced(world)


def test_finalize__pass__reservations_released(world):
    pid, _t = world.create_pact()
    jid = to_verdict(world, pid, [9000, 8500, 8000])
    for m in world.evaluators:
        assert ev_stake(world, m)[:2] == (20 * E18, EVAL_PENALTY)
    finalize_after_window(world, jid)
    for m in world.evaluators:
        assert ev_stake(world, m)[:2] == (20 * E18, 0)
    assert_balanced(world)


def test_finalize__fail__reservations_released_no_penalty(world):
    pid, _t = world.create_pact()
    jid = to_verdict(world, pid, [0, 100, 9000])
    finalize_after_window(world, jid)
    for m in world.evaluators:
        assert ev_stake(world, m)[:2] == (20 * E18, 0)
    assert_balanced(world)


def test_finalize__feedback__score_and_first_counted_vote_evidence(world):
    """ADR 011: no word stores the first vote's evidence; finalize takes a counted round-0 vote
    as its Evidence argument and Feedback carries that vote's hash. The proxy passes the job's
    first counted vote, as a client does: here evaluator 1's. (test_job_word holds another
    vote's, a batch leaf's, none, and every refusal.)"""
    pid, t = world.create_pact()
    jid = submitted(world, pid, E18)
    e0, e1, e2 = world.evaluators
    # the first counted vote is evaluator 1's (first in the first call)
    world.settle(jid, [world.vote(e1, jid, 7000), world.vote(e0, jid, 9000)])
    world.settle(jid, [world.vote(e2, jid, 6000)])
    assert world.job(jid)["evidence"] == evidence_of(jid, e1)
    logs = finalize_after_window(world, jid)
    [fb] = events(logs, "Feedback")
    assert fb.agent == world.agent.address
    assert fb.job_id == jid
    assert fb.pact_id == pid
    assert fb.buyer == world.buyer.address
    assert fb.score_bps == 7000
    assert fb.evidence_hash == evidence_of(jid, e1)
    [js] = events(logs, "JobSettled")
    to_agent = E18 * money.pay(t, 7000) // 10_000
    assert (js.job_id, js.score_bps, js.to_agent, js.slashed) == (jid, 7000, to_agent, 0)
    assert js.to_buyer == E18 - to_agent + t.evaluator_fee - 3 * (t.evaluator_fee // 3)
    assert_balanced(world)


def test_finalize__outcomes__agent_and_pact_counters_and_money(world):
    pid, t = world.create_pact()
    world.stake_agent(10 * E18)
    v = E18 // 2
    # pass
    jid = to_verdict(world, pid, [9000] * 3, value=v, stake=0)
    finalize_after_window(world, jid)
    # partial (pay(6500) = 5000)
    jid = to_verdict(world, pid, [6500] * 3, value=v, stake=0)
    finalize_after_window(world, jid)
    # fail
    jid = to_verdict(world, pid, [1000] * 3, value=v, stake=0)
    finalize_after_window(world, jid)
    # no delivery
    jid = world.open(pid, value=v)
    world.accept(jid)
    warp_to(world, world.job(jid)["deadline"] + 1)
    with boa.env.prank(world.attacker.address):
        world.facet.expire(jid, t.as_tuple())
    # no verdict (evaluator silence, refund)
    jid = submitted(world, pid, v, stake=0)
    world.settle(jid, votes_for(world, jid, [9000]))
    warp_to(world, world.job(jid)["deadline"] + 1)
    with boa.env.prank(world.attacker.address):
        world.facet.expire(jid, t.as_tuple())
    expected = [3, 1, 1, 1, 1, 1, 0, 0]
    assert agent_lanes(world) == expected
    assert pact_lanes(world, pid) == expected
    assert expected[C_NO_DELIVERY] == expected[C_NO_VERDICT] == 1
    bond = v // 5
    released = v + v // 2  # pass + partial
    slashed = 2 * (bond // 2)  # fail + no delivery
    assert money_split(world.escrow.agent_money(world.agent.address, t.asset)) == (released, slashed)
    assert money_split(world.escrow.pact_money(pid)) == (released, slashed)
    assert world.escrow.agent_stake(world.agent.address, t.asset) == (10 * E18 + released - slashed, 0)
    assert_balanced(world)


def test_finalize__counters__pact_lanes_are_per_pact(world):
    pid_a, _ = world.create_pact()
    pid_b, _ = world.create_pact(spec_hash=b"\x01" * 32)
    jid = to_verdict(world, pid_a, [9000] * 3, value=E18 // 2)
    finalize_after_window(world, jid)
    jid = to_verdict(world, pid_b, [1000] * 3, value=E18 // 2, stake=0)
    finalize_after_window(world, jid)
    assert pact_lanes(world, pid_a)[:4] == [1, 1, 0, 0]
    assert pact_lanes(world, pid_b)[:4] == [1, 0, 0, 1]
    assert agent_lanes(world)[:4] == [2, 1, 0, 1]
    assert money_split(world.escrow.pact_money(pid_a)) == (E18 // 2, 0)
    assert money_split(world.escrow.pact_money(pid_b)) == (0, E18 // 20)
    assert_balanced(world)


def test_withdraw__after_fail__buyer_and_insurance_pull_credits(world):
    pid, t = world.create_pact()
    _jid, _d = settle_job(world, pid, [1000] * 3, E18)
    for who in (world.buyer, world.insurance, *world.evaluators):
        amount = world.escrow.credits(who.address, t.asset)
        assert amount > 0
        wallet = boa.env.get_balance(who.address)
        with boa.env.prank(who.address):
            world.escrow.withdraw(t.asset)
        assert boa.env.get_balance(who.address) == wallet + amount
        assert world.escrow.credits(who.address, t.asset) == 0
        assert_balanced(world)
    # burned value stays in the contract, counted
    assert world.escrow.burned(t.asset) == E18 // 10 * 2000 // 10_000
    assert_balanced(world)


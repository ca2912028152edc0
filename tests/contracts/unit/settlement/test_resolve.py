"""appeal (round-1 votes) and resolve: the challenge economics of DESIGN's "Challenge and appeal"
against pactbond.money.appeal() and settle()."""

import boa
import pytest

from pactbond import money
from tests.conftest import actor
from tests.contracts.conftest import E18, EVAL_PENALTY
from tests.contracts.unit.settlement.conftest import (
    C_CHALLENGES,
    C_FAILED,
    C_PASSED,
    C_SEVENTH,
    CHALLENGED,
    SETTLED,
    agent_lanes,
    assert_balanced,
    challenge,
    delta,
    ev_stake,
    events,
    pact_lanes,
    resolve,
    snapshot,
    to_verdict,
    votes_for,
    warp_to,
)

PEN = EVAL_PENALTY


def challenged(world, scores0, challenger, **over):
    pid, t = world.create_pact(**over)
    jid = to_verdict(world, pid, scores0)
    challenge(world, jid, challenger)
    return jid, t, pid


def post_appeal(world, jid, scores, members=None):
    world.appeal(jid, votes_for(world, jid, scores, members=members, round_=1))


def check_outcome(world, d, a, s, penalized, challenger, other, bond_):
    """Deltas (from before the appeal) match money.appeal `a` and money.settle `s`."""
    assert a.penalized == penalized
    pens = len(penalized) * PEN
    fav = a.favoured
    ch, ot = ("buyer", "agent") if challenger is world.buyer else ("agent", "buyer")
    assert other is (world.agent if challenger is world.buyer else world.buyer)
    expected = {"buyer": s.to_buyer, "agent": 0}
    expected[ch] += a.to_challenger
    expected[ot] += a.to_other
    if a.overturned:
        expected[fav] += pens
    assert d["buyer"] == expected["buyer"]
    assert d["agent"] == expected["agent"]
    assert d["free"] == s.to_agent + s.bond_returned
    assert d["locked"] == -bond_
    assert d["burned"] == a.burned + s.burned
    assert d["insurance"] == s.to_insurance
    assert d["voters"] == [s.fee_each] * 3
    assert d["stakes"] == [(-PEN, -PEN) if i in penalized else (0, -PEN) for i in range(3)]


def test_resolve__buyer_overturns_generous_pass__bond_back_penalties_to_buyer_fail_settles(world):
    r0, r1 = [9000, 8500, 4000], [3000, 3000, 3000]
    jid, t, pid = challenged(world, r0, world.buyer)
    before = snapshot(world)
    post_appeal(world, jid, r1)
    P = world.job(jid)["deadline"]
    logs = resolve(world, jid)
    assert world.now() < P  # early: every appeal member voted
    assert world.job(jid)["state"] == SETTLED
    a = money.appeal(t, 8500, r0, r1, 2, "buyer")
    assert (a.overturned, a.challenger_won, a.final_score, a.favoured) == (True, True, 3000, "buyer")
    assert a.penalized == [0, 1]  # pay 10000 >= pay(s1) + delta; the 4000 voter (pay 0) is not
    s = money.settle(t, E18, 3000, 3)
    d = delta(snapshot(world), before)
    # by hand: bond less the appeal fee back, fee 0.01 each, two penalties, a fail settlement
    assert a.to_challenger == t.challenge_bond - t.appeal_fee
    assert d["appeal"] == [t.appeal_fee // 3] * 3
    check_outcome(world, d, a, s, [0, 1], world.buyer, world.agent, E18 // 5)
    assert d["buyer"] == (t.challenge_bond - t.appeal_fee) + 2 * PEN + E18 + E18 // 20 + 1
    assert ev_stake(world, world.evaluators[0])[:2] == (15 * E18, 0)
    assert ev_stake(world, world.evaluators[2])[:2] == (20 * E18, 0)
    [ar] = events(logs, "AppealResolved")
    assert (ar.job_id, ar.quorum, ar.overturned, ar.challenger_won, ar.score_bps) == (
        jid, True, True, True, 3000)
    pens = events(logs, "EvaluatorPenalized")
    assert [(p.member, p.amount, p.to) for p in pens] == [
        (world.evaluators[i].address, PEN, world.buyer.address) for i in (0, 1)]
    [fb] = events(logs, "Feedback")
    assert fb.score_bps == 3000
    assert pact_lanes(world, pid)[C_CHALLENGES] == 1 and pact_lanes(world, pid)[C_SEVENTH] == 1
    assert agent_lanes(world)[C_CHALLENGES] == 1 and agent_lanes(world)[C_SEVENTH] == 0
    assert agent_lanes(world)[C_FAILED] == 1
    assert_balanced(world)


@pytest.mark.parametrize("n1", [2, 3])
def test_resolve__appeal_fee_not_divisible__floor_each_remainder_to_challenger(world, n1):
    fee = 3 * E18 // 100 + 1
    r0, r1 = [9000, 8500, 8000], [8600] * n1
    jid, t, _pid = challenged(world, r0, world.buyer, appeal_fee=fee)
    before = snapshot(world)
    post_appeal(world, jid, r1)
    if n1 < 3:
        warp_to(world, world.job(jid)["deadline"] + 1)
    resolve(world, jid)
    d = delta(snapshot(world), before)
    a = money.appeal(t, 8500, r0, r1, 2, "buyer")
    assert not a.overturned
    assert d["appeal"] == [fee // n1] * n1 + [0] * (3 - n1)
    assert a.to_challenger == fee - n1 * (fee // n1) == 1
    rest = t.challenge_bond - fee
    assert rest % 2 == 1
    assert a.to_other == rest // 2 and a.burned == rest - rest // 2
    check_outcome(world, d, a, money.settle(t, E18, 8500, 3), [], world.buyer, world.agent,
                  E18 // 5)
    assert_balanced(world)


def test_resolve__buyer_challenge_not_overturned__half_rest_to_agent_rest_burned(world):
    r0, r1 = [9000, 8500, 8000], [9500, 9500, 9500]
    jid, t, pid = challenged(world, r0, world.buyer)
    before = snapshot(world)
    post_appeal(world, jid, r1)
    logs = resolve(world, jid)
    d = delta(snapshot(world), before)
    rest = t.challenge_bond - t.appeal_fee
    assert d["agent"] == rest // 2
    a = money.appeal(t, 8500, r0, r1, 2, "buyer")
    assert (a.overturned, a.challenger_won, a.final_score) == (False, False, 8500)
    check_outcome(world, d, a, money.settle(t, E18, 8500, 3), [], world.buyer, world.agent,
                  E18 // 5)
    [fb] = events(logs, "Feedback")
    assert fb.score_bps == 8500  # s0 settles
    assert pact_lanes(world, pid)[C_CHALLENGES] == 1 and pact_lanes(world, pid)[C_SEVENTH] == 0
    assert agent_lanes(world)[C_SEVENTH] == 0  # the buyer lost, not the agent
    assert agent_lanes(world)[C_PASSED] == 1
    assert_balanced(world)


def test_resolve__agent_overturns_partial_upward__bond_back_penalties_to_agent_pass(world):
    r0, r1 = [6000, 6500, 7800], [9000, 9000, 9000]
    jid, t, pid = challenged(world, r0, world.agent)
    before = snapshot(world)
    post_appeal(world, jid, r1)
    resolve(world, jid)
    a = money.appeal(t, 6500, r0, r1, 2, "agent")
    assert (a.overturned, a.challenger_won, a.favoured) == (True, True, "agent")
    assert a.penalized == [0, 1]  # pay 3333, 5000 <= 10000 - 1000; pay(7800) = 9333 is not
    d = delta(snapshot(world), before)
    check_outcome(world, d, a, money.settle(t, E18, 9000, 3), [0, 1], world.agent,
                  world.buyer, E18 // 5)
    assert d["agent"] == t.challenge_bond - t.appeal_fee + 2 * PEN  # a credit, not free stake
    assert d["free"] == E18 + E18 // 5
    assert agent_lanes(world)[C_SEVENTH] == 0
    assert pact_lanes(world, pid)[C_SEVENTH] == 1
    assert agent_lanes(world)[C_PASSED] == 1
    assert_balanced(world)


def test_resolve__agent_challenge_overturned_against_it__loses_bond_penalties_to_buyer(world):
    r0, r1 = [5100, 6500, 7000], [2000, 2000, 2000]
    jid, t, pid = challenged(world, r0, world.agent)
    before = snapshot(world)
    post_appeal(world, jid, r1)
    resolve(world, jid)
    a = money.appeal(t, 6500, r0, r1, 2, "agent")
    assert (a.overturned, a.challenger_won, a.favoured) == (True, False, "buyer")
    assert a.penalized == [1, 2]  # pay(5100) = 333 is within delta of pay(s1) = 0
    d = delta(snapshot(world), before)
    check_outcome(world, d, a, money.settle(t, E18, 2000, 3), [1, 2], world.agent,
                  world.buyer, E18 // 5)
    rest = t.challenge_bond - t.appeal_fee
    assert d["agent"] == 0
    assert d["buyer"] == rest // 2 + 2 * PEN + E18 + E18 // 20 + 1
    assert agent_lanes(world)[C_CHALLENGES] == 1 and agent_lanes(world)[C_SEVENTH] == 1
    assert pact_lanes(world, pid)[C_SEVENTH] == 1
    assert agent_lanes(world)[C_FAILED] == 1
    assert_balanced(world)


def test_resolve__agent_challenge_not_overturned__half_rest_to_buyer_lost_counted(world):
    r0, r1 = [6000, 6500, 7000], [6600, 6600, 6600]
    jid, t, pid = challenged(world, r0, world.agent)
    before = snapshot(world)
    post_appeal(world, jid, r1)
    resolve(world, jid)
    a = money.appeal(t, 6500, r0, r1, 2, "agent")
    assert not a.overturned
    d = delta(snapshot(world), before)
    check_outcome(world, d, a, money.settle(t, E18, 6500, 3), [], world.agent, world.buyer,
                  E18 // 5)
    assert agent_lanes(world)[C_SEVENTH] == 1
    assert pact_lanes(world, pid)[C_SEVENTH] == 0
    assert_balanced(world)


@pytest.mark.parametrize("n1", [0, 1])
def test_resolve__no_round1_quorum__whole_bond_back_s0_settles(world, n1):
    r0 = [9000, 8500, 8000]
    jid, t, pid = challenged(world, r0, world.buyer)
    before = snapshot(world)
    if n1:
        post_appeal(world, jid, [1000])
    warp_to(world, world.job(jid)["deadline"] + 1)
    logs = resolve(world, jid)
    d = delta(snapshot(world), before)
    a = money.appeal(t, 8500, r0, [1000] * n1, 2, "buyer")
    assert not a.quorum and a.to_challenger == t.challenge_bond
    assert d["appeal"] == [0, 0, 0]  # no fee taken
    check_outcome(world, d, a, money.settle(t, E18, 8500, 3), [], world.buyer, world.agent,
                  E18 // 5)
    [ar] = events(logs, "AppealResolved")
    assert (ar.quorum, ar.overturned, ar.challenger_won, ar.score_bps) == (False, False, False, 8500)
    assert pact_lanes(world, pid)[C_CHALLENGES] == 1 and pact_lanes(world, pid)[C_SEVENTH] == 0
    assert_balanced(world)


def test_resolve__threshold_met_but_not_all_voted__appeal_open_until_P(world):
    jid, _t, _pid = challenged(world, [9000, 8500, 8000], world.buyer)
    post_appeal(world, jid, [3000, 3000])
    P = world.job(jid)["deadline"]
    with boa.reverts("escrow: appeal open"):
        resolve(world, jid)
    warp_to(world, P)
    with boa.reverts("escrow: appeal open"):
        resolve(world, jid)
    world.warp(1)
    resolve(world, jid)
    assert world.job(jid)["state"] == SETTLED
    assert_balanced(world)


def test_resolve__no_votes_before_P__appeal_open(world):
    jid, _t, _pid = challenged(world, [9000, 8500, 8000], world.buyer)
    with boa.reverts("escrow: appeal open"):
        resolve(world, jid)
    assert world.job(jid)["state"] == CHALLENGED


def test_resolve__revoked_appeal_member__others_all_voted_resolve_early(world):
    jid, _t, _pid = challenged(world, [9000, 8500, 8000], world.buyer)
    with boa.env.prank(world.appeal_evaluators[2].address):
        world.registry.revoke_key()
    post_appeal(world, jid, [3000, 3000])
    assert world.now() < world.job(jid)["deadline"]
    resolve(world, jid)
    assert world.job(jid)["state"] == SETTLED
    assert_balanced(world)


@pytest.mark.parametrize(("s1", "overturned"), [(8001, False), (8000, True)])
def test_resolve__min_appeal_delta_boundary_down__overturn_and_penalty_edges(world, s1, overturned):
    # pay(s) = s: delta 1000 bps; s0 = 9000
    r0, r1 = [8999, 9000, 9500], [s1] * 3
    jid, t, pid = challenged(world, r0, world.buyer, fail_below_bps=0, pass_at_bps=10_000)
    before = snapshot(world)
    post_appeal(world, jid, r1)
    resolve(world, jid)
    a = money.appeal(t, 9000, r0, r1, 2, "buyer")
    assert a.overturned is overturned
    penalized = [1, 2] if overturned else []  # 8999 is 999 beyond 8000: released
    assert a.penalized == penalized
    final = s1 if overturned else 9000
    d = delta(snapshot(world), before)
    check_outcome(world, d, a, money.settle(t, E18, final, 3), penalized, world.buyer,
                  world.agent, E18 // 5)
    assert d["free"] == E18 * final // 10_000 + E18 // 5
    assert pact_lanes(world, pid)[C_SEVENTH] == int(overturned)
    assert_balanced(world)


@pytest.mark.parametrize(("s1", "overturned"), [(5999, False), (6000, True)])
def test_resolve__min_appeal_delta_boundary_up__overturn_and_penalty_edges(world, s1, overturned):
    r0, r1 = [4000, 5000, 5500], [s1] * 3
    jid, t, _pid = challenged(world, r0, world.agent, fail_below_bps=0, pass_at_bps=10_000)
    before = snapshot(world)
    post_appeal(world, jid, r1)
    resolve(world, jid)
    a = money.appeal(t, 5000, r0, r1, 2, "agent")
    assert a.overturned is overturned and a.challenger_won is overturned
    penalized = [0, 1] if overturned else []  # 5500 is only 500 below 6000
    assert a.penalized == penalized
    final = s1 if overturned else 5000
    d = delta(snapshot(world), before)
    check_outcome(world, d, a, money.settle(t, E18, final, 3), penalized, world.agent,
                  world.buyer, E18 // 5)
    assert agent_lanes(world)[C_SEVENTH] == int(not overturned)
    assert_balanced(world)


# -- round-1 votes that do not count ----------------------------------------------------------


def test_appeal__job_not_challenged__job_not_in_appeal(world):
    pid, _t = world.create_pact()
    jid = to_verdict(world, pid, [9000, 8500, 8000])
    with boa.reverts("vote: job not in appeal"):
        post_appeal(world, jid, [3000])
    assert world.job(jid)["r1"] == 0


def test_appeal__committee_member__not_an_appeal_member(world):
    jid, _t, _pid = challenged(world, [9000, 8500, 8000], world.buyer)
    with boa.reverts("vote: not an appeal member"):
        world.appeal(jid, [world.vote(world.evaluators[0], jid, 3000, round_=1)])
    assert world.job(jid)["r1"] == 0


def test_appeal__listed_but_unaccepted_member__not_an_appeal_member(world):
    extra = actor("appeal-evaluator-3")
    world.fund(extra)
    cid = world.create_committee([*world.appeal_evaluators, extra], 2, accept=False)
    vid = world.registry.current_version(cid)
    for m in world.appeal_evaluators:
        with boa.env.prank(m.address):
            world.registry.accept_version(vid)
    pid, _t = world.create_pact(appeal_committee_id=cid)
    jid = to_verdict(world, pid, [9000, 8500, 8000])
    challenge(world, jid, world.buyer)
    with boa.reverts("vote: not an appeal member"):
        world.appeal(jid, [world.vote(extra, jid, 3000, round_=1)])
    assert world.job(jid)["r1"] == 0
    # the unaccepted member does not hold up an early resolve
    post_appeal(world, jid, [3000, 3000, 3000])
    resolve(world, jid)
    assert world.job(jid)["state"] == SETTLED
    assert_balanced(world, extra=(extra,))


def test_appeal__revoked_key__refused(world):
    jid, _t, _pid = challenged(world, [9000, 8500, 8000], world.buyer)
    vote = world.vote(world.appeal_evaluators[0], jid, 3000, round_=1)
    with boa.env.prank(world.appeal_evaluators[0].address):
        world.registry.revoke_key()
    with boa.reverts("vote: key revoked"):
        world.appeal(jid, [vote])
    assert world.job(jid)["r1"] == 0


def test_appeal__member_unstaking_below_bond__stake_below_bond(world):
    jid, t, _pid = challenged(world, [9000, 8500, 8000], world.buyer)
    m = world.appeal_evaluators[0]
    with boa.env.prank(m.address):
        world.escrow.request_unstake(t.asset, 15 * E18)  # 5 ETH left outside withdrawal < bond
    with boa.reverts("vote: member stake below bond"):
        post_appeal(world, jid, [3000], members=[m])
    assert world.job(jid)["r1"] == 0


def test_appeal__after_appeal_deadline__deadline_passed(world):
    jid, _t, _pid = challenged(world, [9000, 8500, 8000], world.buyer)
    P = world.job(jid)["deadline"]
    votes = votes_for(world, jid, [3000, 3000], round_=1)
    warp_to(world, P + 1)
    with boa.reverts("vote: deadline passed"):
        world.appeal(jid, votes)
    assert world.job(jid)["r1"] == 0


def test_appeal__at_appeal_deadline__counted(world):
    jid, _t, _pid = challenged(world, [9000, 8500, 8000], world.buyer)
    warp_to(world, world.job(jid)["deadline"])
    post_appeal(world, jid, [3000, 3000])
    assert world.job(jid)["r1"] != 0
    assert world.escrow.median_score(jid, 1) == 3000


def test_appeal__vote_signed_deadline_passed__refused(world):
    jid, _t, _pid = challenged(world, [9000, 8500, 8000], world.buyer)
    m = world.appeal_evaluators[0]
    vote = world.vote(m, jid, 3000, round_=1, deadline=world.now() + 5)
    world.warp(6)
    with boa.reverts("vote: deadline passed"):
        world.appeal(jid, [vote])


def test_appeal__same_member_twice__duplicate_vote(world):
    jid, _t, _pid = challenged(world, [9000, 8500, 8000], world.buyer)
    post_appeal(world, jid, [3000])
    with boa.reverts("vote: duplicate vote"):
        post_appeal(world, jid, [4000])
    assert world.escrow.median_score(jid, 1) == 3000


def test_resolve__not_challenged__refused(world):
    pid, _t = world.create_pact()
    jid = to_verdict(world, pid, [9000, 8500, 8000])
    with boa.reverts("escrow: not challenged"):
        resolve(world, jid)


def test_resolve__twice__second_refused(world):
    jid, _t, _pid = challenged(world, [9000, 8500, 8000], world.buyer)
    post_appeal(world, jid, [3000, 3000, 3000])
    resolve(world, jid)
    before = snapshot(world)
    with boa.reverts("escrow: not challenged"):
        resolve(world, jid)
    assert snapshot(world) == before
    assert_balanced(world)

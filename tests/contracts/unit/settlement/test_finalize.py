"""finalize: when a job with a round-0 verdict settles, and the zero-window settle-in-place."""

import boa

from pactbond import money
from tests.contracts.conftest import E18, HOUR
from tests.contracts.unit.settlement.conftest import (
    SETTLED,
    SUBMITTED,
    VERDICT,
    assert_balanced,
    assert_settlement,
    delta,
    events,
    finalize,
    snapshot,
    submitted,
    to_verdict,
    votes_for,
    warp_to,
)


def test_finalize__early_close_at_challenge_deadline__refused_then_settles_after(world):
    pid, t = world.create_pact()
    jid = to_verdict(world, pid, [9000, 8500, 8000])
    close = world.job(jid)["close_at"]
    assert close == world.now() < world.job(jid)["deadline"]  # closed early: all three voted
    warp_to(world, close + t.challenge_window)  # C itself: still open
    with boa.reverts("escrow: challenge window open"):
        finalize(world, jid)
    world.warp(1)
    finalize(world, jid)
    assert world.job(jid)["state"] == SETTLED
    assert_balanced(world)


def test_finalize__no_early_close__challenge_deadline_counts_from_E(world):
    pid, t = world.create_pact()
    jid = submitted(world, pid)
    world.settle(jid, votes_for(world, jid, [9000, 8500]))
    j = world.job(jid)
    assert j["state"] == VERDICT and j["close_at"] == j["deadline"]
    warp_to(world, j["deadline"] + t.challenge_window)
    with boa.reverts("escrow: challenge window open"):
        finalize(world, jid)
    world.warp(1)
    finalize(world, jid)
    assert world.job(jid)["state"] == SETTLED
    assert_balanced(world)


def test_finalize__below_threshold__no_verdict_refused(world):
    pid, t = world.create_pact()
    jid = submitted(world, pid)
    world.settle(jid, votes_for(world, jid, [9000]))
    assert world.job(jid)["state"] == SUBMITTED
    warp_to(world, world.job(jid)["deadline"] + t.challenge_window + 1)
    with boa.reverts("escrow: no verdict"):
        finalize(world, jid)
    assert_balanced(world)


def test_finalize__already_settled__refused(world):
    pid, t = world.create_pact()
    jid = to_verdict(world, pid, [9000] * 3)
    warp_to(world, world.job(jid)["close_at"] + t.challenge_window + 1)
    finalize(world, jid)
    before = snapshot(world)
    with boa.reverts("escrow: no verdict"):
        finalize(world, jid)
    assert snapshot(world) == before
    assert_balanced(world)


def test_finalize__wrong_terms__refused(world):
    pid, t = world.create_pact()
    jid = to_verdict(world, pid, [9000] * 3)
    warp_to(world, world.job(jid)["close_at"] + t.challenge_window + 1)
    other = t.model_copy(update={"evaluator_fee": 0})
    with boa.env.prank(world.attacker.address), boa.reverts("escrow: wrong pact terms"):
        world.escrow.finalize(jid, other.as_tuple())
    assert world.job(jid)["state"] == VERDICT


def test_finalize__by_a_keeper__pays_the_parties_not_the_caller(world):
    pid, t = world.create_pact()
    jid = to_verdict(world, pid, [9000] * 3)
    warp_to(world, world.job(jid)["close_at"] + t.challenge_window + 1)
    before = snapshot(world)
    finalize(world, jid, sender=world.attacker)
    assert world.escrow.credits(world.attacker.address, t.asset) == 0
    d = delta(snapshot(world), before)
    assert_settlement(d, money.settle(t, E18, 9000, 3), E18 // 5, (0, 1, 2))
    assert_balanced(world)


def test_finalize__while_paused__settles(world):
    pid, t = world.create_pact()
    jid = to_verdict(world, pid, [1000] * 3)
    with boa.env.prank(world.guardian.address):
        world.registry.set_paused(True)
    warp_to(world, world.job(jid)["close_at"] + t.challenge_window + 1)
    before = snapshot(world)
    finalize(world, jid)
    d = delta(snapshot(world), before)
    assert_settlement(d, money.settle(t, E18, 1000, 3), E18 // 5, (0, 1, 2))
    assert_balanced(world)


def test_settle__zero_challenge_window_closing_vote__settles_in_same_call(world):
    pid, t = world.create_pact(challenge_window=0, appeal_window=0)
    jid = submitted(world, pid)
    world.settle(jid, votes_for(world, jid, [9000, 6000]))
    assert world.job(jid)["state"] == VERDICT  # threshold reached, round 0 still open
    before = snapshot(world)
    world.settle(jid, [world.vote(world.evaluators[2], jid, 7000)])
    logs = world.escrow.get_logs()
    assert world.job(jid)["state"] == SETTLED
    d = delta(snapshot(world), before)
    assert_settlement(d, money.settle(t, E18, 7000, 3), E18 // 5, (0, 1, 2))
    [js] = events(logs, "JobSettled")
    assert (js.job_id, js.score_bps) == (jid, 7000)
    assert_balanced(world)


def test_settle__zero_window_all_votes_in_one_call__settles_at_once(world):
    pid, t = world.create_pact(challenge_window=0, appeal_window=0)
    jid = submitted(world, pid)
    before = snapshot(world)
    world.settle(jid, votes_for(world, jid, [100, 200, 300]))
    assert world.job(jid)["state"] == SETTLED
    d = delta(snapshot(world), before)
    assert_settlement(d, money.settle(t, E18, 200, 3), E18 // 5, (0, 1, 2))
    assert_balanced(world)


def test_finalize__zero_window_without_close__waits_for_E(world):
    pid, t = world.create_pact(challenge_window=0, appeal_window=0)
    jid = submitted(world, pid)
    world.settle(jid, votes_for(world, jid, [9000, 8000]))
    E = world.job(jid)["deadline"]
    warp_to(world, E)
    with boa.reverts("escrow: challenge window open"):
        finalize(world, jid)
    world.warp(1)
    before = snapshot(world)
    finalize(world, jid)
    d = delta(snapshot(world), before)
    assert_settlement(d, money.settle(t, E18, 8500, 2), E18 // 5, (0, 1))
    assert_balanced(world)


def test_finalize__settled_event_matches_money_rules(world):
    pid, t = world.create_pact(evaluator_fee=E18 // 100 + 2)
    value = 7 * E18 // 4 + 3
    jid = to_verdict(world, pid, [6000, 7000, 7500], value=value)
    warp_to(world, world.job(jid)["close_at"] + HOUR + 1)
    logs = finalize(world, jid)
    s = money.settle(t, value, 7000, 3)
    [js] = events(logs, "JobSettled")
    assert (js.job_id, js.score_bps, js.to_agent, js.to_buyer, js.slashed) == (
        jid, 7000, s.to_agent, s.to_buyer, 0)
    assert_balanced(world)

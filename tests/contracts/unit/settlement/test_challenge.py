"""challenge: who, when, and for how much a round-0 verdict can be challenged."""

import boa
import pytest

from tests.contracts.conftest import E18, HOUR
from tests.contracts.unit.settlement.conftest import (
    CHALLENGED,
    SETTLED,
    SUBMITTED,
    VERDICT,
    assert_balanced,
    challenge,
    events,
    finalize,
    finalize_after_window,
    snapshot,
    submitted,
    to_verdict,
    votes_for,
    warp_to,
)


def early_closed(world, **over):
    pid, t = world.create_pact(**over)
    jid = to_verdict(world, pid, [9000, 8500, 8000])
    return jid, t


def open_round(world, **over):
    """A job with a verdict from two of three members: round 0 closes only at E."""
    pid, t = world.create_pact(**over)
    jid = submitted(world, pid)
    world.settle(jid, votes_for(world, jid, [9000, 8500]))
    return jid, t


def test_challenge__buyer_after_early_close__challenged_with_appeal_deadline(world):
    jid, t = early_closed(world)
    world.warp(10)
    balance = boa.env.get_balance(world.escrow.address)
    wallet = boa.env.get_balance(world.buyer.address)
    logs = challenge(world, jid, world.buyer)
    j = world.job(jid)
    assert j["state"] == CHALLENGED
    assert j["by_agent"] is False
    assert j["deadline"] == world.now() + t.appeal_window  # P = challenge time + appeal window
    assert boa.env.get_balance(world.escrow.address) == balance + t.challenge_bond
    assert boa.env.get_balance(world.buyer.address) == wallet - t.challenge_bond
    [ev] = events(logs, "JobChallenged")
    assert (ev.job_id, ev.challenger, ev.score_bps, ev.appeal_deadline) == (
        jid, world.buyer.address, 8500, world.now() + t.appeal_window)
    assert_balanced(world)


def test_challenge__agent__challenger_is_agent(world):
    jid, _t = early_closed(world)
    challenge(world, jid, world.agent)
    j = world.job(jid)
    assert j["state"] == CHALLENGED and j["by_agent"] is True
    assert_balanced(world)


def test_challenge__moves_no_job_money(world):
    jid, _t = early_closed(world)
    before = snapshot(world)
    challenge(world, jid, world.buyer)
    assert snapshot(world) == before
    assert world.job(jid)["value"] == E18
    assert_balanced(world)


def test_challenge__round_zero_open_before_E__refused(world):
    jid, _t = open_round(world)
    assert world.job(jid)["state"] == VERDICT
    with boa.reverts("escrow: round 0 open"):
        challenge(world, jid, world.buyer)


def test_challenge__at_E_without_early_close__refused_then_allowed_after(world):
    jid, _t = open_round(world)
    E = world.job(jid)["deadline"]
    warp_to(world, E)
    with boa.reverts("escrow: round 0 open"):
        challenge(world, jid, world.buyer)
    world.warp(1)
    challenge(world, jid, world.buyer)
    assert world.job(jid)["state"] == CHALLENGED
    assert_balanced(world)


def test_challenge__at_deadline_after_E__allowed(world):
    jid, t = open_round(world)
    warp_to(world, world.job(jid)["deadline"] + t.challenge_window)  # C = E + window
    challenge(world, jid, world.agent)
    assert world.job(jid)["state"] == CHALLENGED
    assert_balanced(world)


def test_challenge__after_deadline_from_E__refused(world):
    jid, t = open_round(world)
    warp_to(world, world.job(jid)["deadline"] + t.challenge_window + 1)
    with boa.reverts("escrow: challenge window closed"):
        challenge(world, jid, world.buyer)


def test_challenge__at_deadline_after_early_close__allowed(world):
    jid, t = early_closed(world)
    warp_to(world, world.job(jid)["close_at"] + t.challenge_window)
    challenge(world, jid, world.buyer)
    assert world.job(jid)["state"] == CHALLENGED
    assert_balanced(world)


def test_challenge__after_deadline_from_early_close__refused(world):
    jid, t = early_closed(world)
    close = world.job(jid)["close_at"]
    assert close < world.job(jid)["deadline"]
    warp_to(world, close + t.challenge_window + 1)  # still before E + window
    with boa.reverts("escrow: challenge window closed"):
        challenge(world, jid, world.buyer)
    finalize(world, jid)
    assert world.job(jid)["state"] == SETTLED


@pytest.mark.parametrize("who", ["attacker", "evaluator", "appeal_evaluator", "insurance"])
def test_challenge__not_buyer_or_agent__refused(world, who):
    jid, _t = early_closed(world)
    actor = {"attacker": world.attacker, "evaluator": world.evaluators[0],
             "appeal_evaluator": world.appeal_evaluators[0], "insurance": world.insurance}[who]
    with boa.reverts("escrow: not a party"):
        challenge(world, jid, actor)
    assert world.job(jid)["state"] == VERDICT


def test_challenge__expected_score_differs__score_changed(world):
    jid, _t = early_closed(world)
    with boa.reverts("escrow: score changed"):
        challenge(world, jid, world.buyer, expected=8501)
    with boa.reverts("escrow: score changed"):
        challenge(world, jid, world.buyer, expected=9000)
    assert world.job(jid)["state"] == VERDICT


def test_challenge__below_threshold__no_verdict_to_challenge(world):
    pid, _t = world.create_pact()
    jid = submitted(world, pid)
    world.settle(jid, votes_for(world, jid, [9000]))
    assert world.job(jid)["state"] == SUBMITTED
    warp_to(world, world.job(jid)["deadline"] + 1)
    with boa.reverts("escrow: no verdict to challenge"):
        challenge(world, jid, world.buyer, expected=9000)


def test_challenge__settled_job__no_verdict_to_challenge(world):
    jid, _t = early_closed(world)
    finalize_after_window(world, jid)
    with boa.reverts("escrow: no verdict to challenge"):
        challenge(world, jid, world.buyer, expected=8500)


def test_challenge__twice__second_refused(world):
    jid, _t = early_closed(world)
    challenge(world, jid, world.buyer)
    with boa.reverts("escrow: no verdict to challenge"):
        challenge(world, jid, world.agent, expected=8500)
    assert world.job(jid)["by_agent"] is False
    assert_balanced(world)


def test_challenge__zero_challenge_window__pact_has_no_challenges(world):
    jid, _t = open_round(world, challenge_window=0, appeal_window=0)
    assert world.job(jid)["state"] == VERDICT
    warp_to(world, world.job(jid)["deadline"] + 1)
    with boa.reverts("escrow: pact has no challenges"):
        challenge(world, jid, world.buyer, value=E18 // 10)


@pytest.mark.parametrize("paid", [0, E18 // 10 - 1, E18 // 10 + 1])
def test_challenge__wrong_eth_amount__refused(world, paid):
    jid, t = early_closed(world)
    assert t.challenge_bond == E18 // 10
    with boa.reverts("escrow: wrong ETH amount"):
        challenge(world, jid, world.buyer, value=paid)
    assert world.job(jid)["state"] == VERDICT


def test_finalize__challenged_job__refused(world):
    jid, _t = early_closed(world)
    challenge(world, jid, world.buyer)
    warp_to(world, world.job(jid)["deadline"] + HOUR)
    with boa.reverts("escrow: no verdict"):
        finalize(world, jid)
    assert world.job(jid)["state"] == CHALLENGED
    assert_balanced(world)


def test_challenge__same_second_as_early_close__refused_then_allowed(world):
    """DESIGN: a challenge is allowed *after* round-0 close ("after X" means timestamp > X)."""
    jid, t = open_round(world)
    # the third vote closes round 0 early, in this second
    world.settle(jid, [world.vote(world.evaluators[2], jid, 8500)])
    j = world.job(jid)
    assert j["close_at"] == world.now() < j["deadline"]
    with boa.env.prank(world.buyer.address), boa.reverts("escrow: round 0 open"):
        world.facet.challenge(jid, t.as_tuple(), world.escrow.median_score(jid, 0), value=t.challenge_bond)
    world.warp(1)
    challenge(world, jid, world.buyer)
    assert world.job(jid)["state"] == CHALLENGED

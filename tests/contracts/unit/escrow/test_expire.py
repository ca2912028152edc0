"""expire (appeals facet): no delivery after the work deadline, evaluator silence after the
evaluation deadline, and every refusal."""

import boa

from pactbond import money
from tests.contracts.conftest import E18, ETH, EVAL_PENALTY
from tests.contracts.unit.escrow.conftest import (
    C_NO_DELIVERY,
    C_NO_VERDICT,
    EXPIRED_NO_DELIVERY,
    EXPIRED_NO_VERDICT,
    accepted_job,
    agent_stake,
    cancel,
    credit,
    ev_stake,
    events,
    expire,
    lanes,
    one_lane,
    pause,
    settle_all,
    submitted_job,
    the_event,
)

STAKE = 10 * E18
PENALTY = EVAL_PENALTY


def _past(world, jid, delta=1):
    world.warp(world.job(jid)["deadline"] + delta - world.now())


# -- no delivery ----------------------------------------------------------------------------

def test_expire__no_delivery_after_work_deadline__refunds_buyer_and_slashes_bond(world):
    pid, t = world.create_pact()
    world.stake_agent(STAKE)
    jid = accepted_job(world, pid, E18)
    balance0 = boa.env.get_balance(world.escrow.address)
    _past(world, jid)
    expire(world, jid)
    s = money.slashed(t, E18)
    s_buyer, s_ins, s_burn = money.slash_split(t, s)
    assert s == E18 // 10 and (s_buyer, s_ins, s_burn) == (s // 2, 3 * s // 10, s // 5)
    assert world.job(jid)["state"] == EXPIRED_NO_DELIVERY
    assert credit(world, world.buyer) == E18 + t.evaluator_fee + s_buyer
    assert credit(world, world.insurance) == s_ins
    assert world.escrow.burned(ETH) == s_burn
    assert agent_stake(world) == (STAKE - s, 0)  # the bond's rest back to free stake
    for m in world.evaluators:
        assert ev_stake(world, m)[:2] == (20 * E18, 0)
    assert boa.env.get_balance(world.escrow.address) == balance0


def test_expire__no_delivery__slash_split_floors_each_share_remainder_to_buyer(world):
    pid, t = world.create_pact(slash_bps=3333, slash_buyer_bps=3334, slash_insurance_bps=3333,
                               slash_burn_bps=3333)
    value = E18 + 7
    world.stake_agent(STAKE)
    jid = accepted_job(world, pid, value)
    _past(world, jid)
    expire(world, jid)
    bond = -(-value * 2000 // 10_000)
    s = -(-bond * 3333 // 10_000)
    ins, burn = s * 3333 // 10_000, s * 3333 // 10_000
    assert (bond, s) == (money.bond(t, value), money.slashed(t, value))
    assert s - ins - burn > s * 3334 // 10_000  # the floors leave a remainder for the buyer
    assert credit(world, world.buyer) == value + t.evaluator_fee + s - ins - burn
    assert credit(world, world.insurance) == ins
    assert world.escrow.burned(ETH) == burn
    assert agent_stake(world) == (STAKE - s, 0)


def test_expire__no_delivery__counts_no_delivery_and_emits_feedback_score_0(world):
    pid, t = world.create_pact()
    world.stake_agent(STAKE)
    jid = accepted_job(world, pid, E18)
    _past(world, jid)
    expire(world, jid)
    s = money.slashed(t, E18)
    expired = the_event(world, "JobExpired", world.facet)
    fb = the_event(world, "Feedback", world.facet)
    assert (expired.job_id, expired.no_delivery, expired.to_agent, expired.slashed) == (jid, True, 0, s)
    assert (fb.agent, fb.job_id, fb.pact_id, fb.buyer) == (world.agent.address, jid, pid, world.buyer.address)
    assert (fb.score_bps, fb.evidence_hash) == (0, b"\x00" * 32)
    assert lanes(world.escrow.agent_counts(world.agent.address)) == one_lane(C_NO_DELIVERY)
    assert lanes(world.escrow.pact_counts(pid)) == one_lane(C_NO_DELIVERY)
    assert world.escrow.agent_money(world.agent.address, ETH) == s << 128
    assert world.escrow.pact_money(pid) == s << 128


def test_expire__no_delivery__resets_exposure_cap(world):
    pid, t = world.create_pact()
    world.stake_agent(STAKE)
    settle_all(world, submitted_job(world, pid, E18), 9000)  # a pass raises the cap
    assert world.escrow.exposure(world.agent.address, pid) == (0, t.cap_step)
    jid = accepted_job(world, pid, E18)
    assert world.escrow.exposure(world.agent.address, pid) == (E18, t.cap_step)
    _past(world, jid)
    expire(world, jid)
    assert world.escrow.exposure(world.agent.address, pid) == (0, 0)


def test_expire__accepted_at_work_deadline__reverts(world):
    pid, _ = world.create_pact()
    world.stake_agent(STAKE)
    jid = accepted_job(world, pid)
    _past(world, jid, 0)
    with boa.reverts("escrow: work window open"):
        expire(world, jid)


def test_expire__no_delivery_while_paused__expires(world):
    pid, _ = world.create_pact()
    world.stake_agent(STAKE)
    jid = accepted_job(world, pid)
    pause(world)
    _past(world, jid)
    expire(world, jid)
    assert world.job(jid)["state"] == EXPIRED_NO_DELIVERY


# -- evaluator silence ----------------------------------------------------------------------

def _silent_job(world, votes=1, **over):
    """A submitted job with `votes` round-0 votes (below the threshold of 2), past E."""
    pid, t = world.create_pact(**over)
    world.stake_agent(STAKE)
    jid = submitted_job(world, pid, E18)
    if votes:
        world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators[:votes]])
    _past(world, jid)
    return pid, t, jid


def test_expire__silence_default_refund__refunds_buyer_and_unlocks_bond(world):
    pid, t, jid = _silent_job(world)
    expire(world, jid)
    expired = the_event(world, "JobExpired", world.facet)
    assert world.job(jid)["state"] == EXPIRED_NO_VERDICT
    assert credit(world, world.buyer) == E18 + t.evaluator_fee
    assert agent_stake(world) == (STAKE, 0)  # nothing slashed
    assert credit(world, world.insurance) == 0
    assert (expired.no_delivery, expired.to_agent, expired.slashed) == (False, 0, 0)
    assert events(world, "Feedback", world.facet) == []
    assert lanes(world.escrow.agent_counts(world.agent.address)) == one_lane(C_NO_VERDICT)
    assert lanes(world.escrow.pact_counts(pid)) == one_lane(C_NO_VERDICT)
    assert world.escrow.agent_money(world.agent.address, ETH) == 0


def test_expire__silence_release__value_to_agent_free_stake_fee_to_buyer(world):
    _, t, jid = _silent_job(world, silence_release=True)
    expire(world, jid)
    expired = the_event(world, "JobExpired", world.facet)
    assert world.job(jid)["state"] == EXPIRED_NO_VERDICT
    assert agent_stake(world) == (STAKE + E18, 0)
    assert credit(world, world.buyer) == t.evaluator_fee
    assert credit(world, world.agent) == 0
    assert (expired.no_delivery, expired.to_agent, expired.slashed) == (False, E18, 0)
    assert world.escrow.agent_money(world.agent.address, ETH) == E18  # released, nothing slashed
    assert lanes(world.escrow.agent_counts(world.agent.address)) == one_lane(C_NO_VERDICT)
    assert events(world, "Feedback", world.facet) == []


def test_expire__silence__burns_silent_members_penalty_and_releases_voter(world):
    _, _, jid = _silent_job(world, votes=1)
    balance0 = boa.env.get_balance(world.escrow.address)
    expire(world, jid)
    voter, *silent = world.evaluators
    assert ev_stake(world, voter)[:2] == (20 * E18, 0)
    for m in silent:
        assert ev_stake(world, m)[:2] == (20 * E18 - PENALTY, 0)
    assert world.escrow.burned(ETH) == 2 * PENALTY
    penalized = events(world, "EvaluatorPenalized", world.facet)
    assert [(e.member, e.amount, e.to) for e in penalized] == [(m.address, PENALTY, ETH) for m in silent]
    assert sum(e.amount for e in events(world, "Burned", world.facet)) == 2 * PENALTY
    assert boa.env.get_balance(world.escrow.address) == balance0  # burned value stays


def test_expire__silence_without_any_vote__burns_every_reservation(world):
    _, _, jid = _silent_job(world, votes=0)
    expire(world, jid)
    for m in world.evaluators:
        assert ev_stake(world, m)[:2] == (20 * E18 - PENALTY, 0)
    assert world.escrow.burned(ETH) == 3 * PENALTY


def test_expire__silence__leaves_cap_bonus_and_ends_open_value(world):
    pid, t = world.create_pact()
    world.stake_agent(STAKE)
    settle_all(world, submitted_job(world, pid, E18), 9000)
    jid = submitted_job(world, pid, E18)
    _past(world, jid)
    expire(world, jid)
    assert world.escrow.exposure(world.agent.address, pid) == (0, t.cap_step)


def test_expire__submitted_at_eval_deadline__reverts(world):
    pid, _ = world.create_pact()
    world.stake_agent(STAKE)
    jid = submitted_job(world, pid)
    _past(world, jid, 0)
    with boa.reverts("escrow: evaluation window open"):
        expire(world, jid)


def test_expire__silence_while_paused__expires(world):
    _, _, jid = _silent_job(world)
    pause(world)
    expire(world, jid)
    assert world.job(jid)["state"] == EXPIRED_NO_VERDICT


# -- not expirable --------------------------------------------------------------------------

def test_expire__open_job_past_accept_deadline__reverts_not_expirable(world):
    pid, _ = world.create_pact()
    jid = world.open(pid, E18)
    _past(world, jid)
    with boa.reverts("escrow: not expirable"):
        expire(world, jid)


def test_expire__settled_job__reverts_not_expirable(world):
    pid, _ = world.create_pact()
    world.stake_agent(STAKE)
    jid = submitted_job(world, pid)
    settle_all(world, jid, 9000)
    with boa.reverts("escrow: not expirable"):
        expire(world, jid)


def test_expire__verdict_past_eval_deadline__reverts_not_expirable(world):
    pid, _ = world.create_pact()
    world.stake_agent(STAKE)
    jid = submitted_job(world, pid)
    world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators[:2]])
    _past(world, jid)
    with boa.reverts("escrow: not expirable"):
        expire(world, jid)


def test_expire__cancelled_job__reverts_not_expirable(world):
    pid, _ = world.create_pact()
    jid = world.open(pid, E18)
    cancel(world, jid)
    with boa.reverts("escrow: not expirable"):
        expire(world, jid)


def test_expire__expired_job__reverts_not_expirable(world):
    pid, t = world.create_pact()
    world.stake_agent(STAKE)
    jid = accepted_job(world, pid)
    _past(world, jid)
    expire(world, jid)
    with boa.reverts("escrow: not expirable"):
        expire(world, jid)
    assert credit(world, world.buyer) == E18 + t.evaluator_fee + money.slash_split(t, money.slashed(t, E18))[0]


def test_expire__altered_terms__reverts(world):
    pid, t = world.create_pact()
    world.stake_agent(STAKE)
    jid = accepted_job(world, pid)
    _past(world, jid)
    with boa.reverts("escrow: wrong pact terms"):
        expire(world, jid, terms=t.model_copy(update={"slash_bps": 0}).as_tuple())


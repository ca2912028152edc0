"""cancel (appeals facet): who may cancel an OPEN job and when, and what it returns."""

import boa

from tests.contracts.conftest import E18, ETH
from tests.contracts.unit.escrow.conftest import (
    CANCELLED,
    cancel,
    credit,
    ev_stake,
    events,
    pause,
    the_event,
)


def test_cancel__buyer_before_acceptance__credits_value_and_fee_and_releases_reservations(world):
    pid, t = world.create_pact()
    jid = world.open(pid, E18)
    balance0 = boa.env.get_balance(world.escrow.address)
    cancel(world, jid)
    ev = the_event(world, "JobCancelled", world.facet)
    credited = the_event(world, "Credited", world.facet)
    assert world.job(jid)["state"] == CANCELLED
    assert credit(world, world.buyer) == E18 + t.evaluator_fee
    assert (credited.account, credited.job_id, credited.amount) == (world.buyer.address, jid, E18 + t.evaluator_fee)
    assert (ev.job_id, ev.by) == (jid, world.buyer.address)
    for m in world.evaluators:
        assert ev_stake(world, m)[:2] == (20 * E18, 0)
    # money moves only by pull
    assert boa.env.get_balance(world.escrow.address) == balance0


def test_cancel__buyer_before_acceptance__records_nothing(world):
    pid, _ = world.create_pact()
    jid = world.open(pid, E18)
    cancel(world, jid)
    assert world.escrow.agent_counts(world.agent.address) == 0
    assert world.escrow.pact_counts(pid) == 0
    assert world.escrow.agent_money(world.agent.address, ETH) == 0
    assert events(world, "Feedback", world.facet) == []


def test_cancel__stranger_at_accept_deadline__reverts(world):
    pid, _ = world.create_pact()
    jid = world.open(pid, E18)
    world.warp(world.job(jid)["deadline"] - world.now())
    with boa.reverts("escrow: accept window open"):
        cancel(world, jid, sender=world.attacker)


def test_cancel__stranger_after_accept_deadline__credits_the_buyer(world):
    pid, t = world.create_pact()
    jid = world.open(pid, E18)
    world.warp(world.job(jid)["deadline"] + 1 - world.now())
    cancel(world, jid, sender=world.attacker)
    ev = the_event(world, "JobCancelled", world.facet)
    assert world.job(jid)["state"] == CANCELLED
    assert ev.by == world.attacker.address
    assert credit(world, world.buyer) == E18 + t.evaluator_fee
    assert credit(world, world.attacker) == 0



def test_cancel__accepted_job__reverts(world):
    pid, _ = world.create_pact()
    world.stake_agent()
    jid = world.open(pid, E18)
    world.accept(jid)
    with boa.reverts("escrow: not open"):
        cancel(world, jid)


def test_cancel__cancelled_job__reverts(world):
    pid, t = world.create_pact()
    jid = world.open(pid, E18)
    cancel(world, jid)
    with boa.reverts("escrow: not open"):
        cancel(world, jid)
    assert credit(world, world.buyer) == E18 + t.evaluator_fee  # credited once


def test_cancel__altered_terms__reverts(world):
    pid, t = world.create_pact()
    jid = world.open(pid, E18)
    with boa.reverts("escrow: wrong pact terms"):
        cancel(world, jid, terms=t.model_copy(update={"evaluator_fee": 0}).as_tuple())


def test_cancel__paused__cancels(world):
    pid, t = world.create_pact()
    jid = world.open(pid, E18)
    pause(world)
    cancel(world, jid)
    assert world.job(jid)["state"] == CANCELLED
    assert credit(world, world.buyer) == E18 + t.evaluator_fee
    with boa.env.prank(world.buyer.address):
        world.escrow.withdraw(ETH)  # withdrawal works while paused too
    assert credit(world, world.buyer) == 0


def test_cancel__facet_called_directly__reverts(world):
    pid, t = world.create_pact()
    jid = world.open(pid, E18)
    facet = world.escrow.raw[1].deployer.at(world.escrow.APPEALS())  # the appeals facet's ABI
    with boa.env.prank(world.buyer.address), boa.reverts("escrow: call the escrow, not the facet"):
        facet.cancel(jid, t.as_tuple(), world.escrow.jobs.of(jid))

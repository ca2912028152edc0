"""The whole job lifecycle, ETH, with outcomes asserted at every step."""

import boa

from tests.contracts.conftest import E18, HOUR

OPEN, ACCEPTED, SUBMITTED, VERDICT, CHALLENGED, SETTLED = 1, 2, 3, 4, 5, 6


def test_lifecycle__pass__pays_agent_and_evaluators(world):
    pid, t = world.create_pact()
    world.stake_agent()
    balance0 = boa.env.get_balance(world.escrow.address)
    jid = world.open(pid, value=E18)
    assert world.job(jid)["state"] == OPEN
    assert boa.env.get_balance(world.escrow.address) == balance0 + E18 + t.evaluator_fee
    world.accept(jid)
    assert world.job(jid)["state"] == ACCEPTED
    assert world.escrow.agent_stake(world.agent.address, t.asset) == (10 * E18 - E18 // 5, E18 // 5)
    world.submit(jid)
    votes = [world.vote(m, jid, 9000) for m in world.evaluators[:2]]
    world.settle(jid, votes)
    assert world.job(jid)["state"] == VERDICT
    world.settle(jid, [world.vote(world.evaluators[2], jid, 8500)])
    world.warp(HOUR + 1)
    with boa.env.prank(world.attacker.address):
        world.escrow.finalize(jid, t.as_tuple())
    assert world.job(jid)["state"] == SETTLED
    # pass: the whole value into free stake, bond unlocked
    assert world.escrow.agent_stake(world.agent.address, t.asset) == (11 * E18, 0)
    fee_each = t.evaluator_fee // 3
    for m in world.evaluators:
        assert world.escrow.credits(m.address, t.asset) == fee_each
    assert world.escrow.credits(world.buyer.address, t.asset) == t.evaluator_fee - 3 * fee_each
    for m in world.evaluators:
        assert world.escrow.evaluator_stake(m.address, t.asset)[1] == 0  # reservation released

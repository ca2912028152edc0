"""accept: the bond locked, exposure, the accept deadline, and every refusal."""

import boa
import pytest

from pactbond import money
from tests.contracts.conftest import E18
from tests.contracts.unit.escrow.conftest import ACCEPTED, OPEN, agent_stake, pause, the_event


def test_accept__open_job__locks_bond_and_sets_work_deadline(world):
    pid, t = world.create_pact()
    world.stake_agent(10 * E18)
    jid = world.open(pid, E18)
    world.accept(jid)
    ev = the_event(world, "JobAccepted")
    bond = money.bond(t, E18)
    j = world.job(jid)
    assert j["state"] == ACCEPTED
    assert j["deadline"] == world.now() + t.work_window
    assert agent_stake(world) == (10 * E18 - bond, bond)
    assert world.escrow.exposure(world.agent.address, pid) == (E18, 0)
    assert (ev.job_id, ev.agent, ev.bond, ev.work_deadline) == (jid, world.agent.address, bond, j["deadline"])


@pytest.mark.parametrize(("value", "over", "expected"), [
    (E18 + 1, {}, 2 * E18 // 10 + 1),  # ceil(value x 2000 / 10000)
    (E18, {"bond_cap": E18 // 10}, E18 // 10),  # min(bond_cap, ...)
    (E18, {"bond_bps": 0}, 0),
])
def test_accept__bond_rule__locks_min_of_cap_and_ceil(world, value, over, expected):
    pid, t = world.create_pact(**over)
    world.stake_agent(10 * E18)
    world.accept(world.open(pid, value))
    assert money.bond(t, value) == expected
    assert agent_stake(world) == (10 * E18 - expected, expected)


def test_accept__already_accepted__reverts(world):
    pid, _ = world.create_pact()
    world.stake_agent()
    jid = world.open(pid, E18)
    world.accept(jid)
    with boa.reverts("escrow: not open"):
        world.accept(jid)


def test_accept__not_the_agent__reverts(world):
    pid, _ = world.create_pact()
    world.stake_agent(agent=world.attacker)
    jid = world.open(pid, E18)
    with boa.reverts("escrow: not agent"):
        world.accept(jid, agent=world.attacker)


def test_accept__at_accept_deadline__accepts(world):
    pid, _ = world.create_pact()
    world.stake_agent()
    jid = world.open(pid, E18)
    world.warp(world.job(jid)["deadline"] - world.now())
    world.accept(jid)
    assert world.job(jid)["state"] == ACCEPTED


def test_accept__one_second_after_accept_deadline__reverts(world):
    pid, _ = world.create_pact()
    world.stake_agent()
    jid = world.open(pid, E18)
    world.warp(world.job(jid)["deadline"] + 1 - world.now())
    with boa.reverts("escrow: accept window closed"):
        world.accept(jid)


def test_accept__paused__reverts(world):
    pid, _ = world.create_pact()
    world.stake_agent()
    jid = world.open(pid, E18)
    pause(world)
    with boa.reverts("escrow: paused"):
        world.accept(jid)
    assert world.job(jid)["state"] == OPEN


def test_accept__altered_terms__reverts(world):
    pid, t = world.create_pact()
    world.stake_agent()
    jid = world.open(pid, E18)
    with boa.env.prank(world.agent.address), boa.reverts("escrow: wrong pact terms"):
        world.escrow.accept(jid, t.model_copy(update={"cap_initial": 5 * E18}).as_tuple())


def test_accept__open_value_plus_value_above_cap__reverts(world):
    pid, _ = world.create_pact()  # cap_initial 2 ETH
    world.stake_agent()
    world.accept(world.open(pid, 3 * E18 // 2))
    jid = world.open(pid, E18 // 2 + 1)
    with boa.reverts("escrow: exposure cap"):
        world.accept(jid)


def test_accept__open_value_plus_value_equal_to_cap__accepts(world):
    pid, t = world.create_pact()
    world.stake_agent()
    world.accept(world.open(pid, 3 * E18 // 2))
    world.accept(world.open(pid, E18 // 2))
    assert world.escrow.exposure(world.agent.address, pid) == (t.cap_initial, 0)


def test_accept__free_stake_below_bond__reverts(world):
    pid, t = world.create_pact()
    bond = money.bond(t, E18)
    world.stake_agent(bond - 1)
    jid = world.open(pid, E18)
    with boa.reverts("escrow: agent stake below bond"):
        world.accept(jid)


def test_accept__free_stake_equal_to_bond__accepts(world):
    pid, t = world.create_pact()
    bond = money.bond(t, E18)
    world.stake_agent(bond)
    world.accept(world.open(pid, E18))
    assert agent_stake(world) == (0, bond)

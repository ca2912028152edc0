"""Exposure per (agent, pact): the cap at accept, raised by passes, reset by fails and no
delivery, left by partials and silence."""

import boa
import pytest

from tests.contracts.conftest import E18
from tests.contracts.unit.settlement.conftest import (
    assert_balanced,
    finalize_after_window,
    submitted,
    to_verdict,
    votes_for,
    warp_to,
)

# default terms: cap_initial 2 ETH, cap_step 1 ETH, cap_max 5 ETH


def exposure(world, pid):
    return world.escrow.exposure(world.agent.address, pid)


def passed(world, pid, value, stake=0):
    jid = to_verdict(world, pid, [9000] * 3, value=value, stake=stake)
    finalize_after_window(world, jid)
    return jid


def expire(world, jid):
    with boa.env.prank(world.attacker.address):
        world.facet.expire(jid, world.terms_of(jid))


def test_accept__value_at_initial_cap__accepted(world):
    pid, t = world.create_pact()
    world.stake_agent()
    jid = world.open(pid, value=t.cap_initial)
    world.accept(jid)
    assert exposure(world, pid) == (t.cap_initial, 0)
    assert_balanced(world)


def test_accept__value_above_initial_cap__exposure_cap(world):
    pid, t = world.create_pact()
    world.stake_agent()
    jid = world.open(pid, value=t.cap_initial + 1)
    with boa.reverts("escrow: exposure cap"):
        world.accept(jid)
    assert exposure(world, pid) == (0, 0)


def test_accept__open_value_plus_new_above_cap__exposure_cap(world):
    pid, _t = world.create_pact()
    world.stake_agent()
    a = world.open(pid, value=3 * E18 // 2)
    b = world.open(pid, value=E18 // 2)
    c = world.open(pid, value=1)
    world.accept(a)
    world.accept(b)
    assert exposure(world, pid) == (2 * E18, 0)
    with boa.reverts("escrow: exposure cap"):
        world.accept(c)
    assert_balanced(world)


def test_accept__opened_unaccepted_jobs__do_not_count(world):
    pid, _t = world.create_pact()
    world.stake_agent()
    world.open(pid, value=2 * E18)  # funded, not accepted
    jid = world.open(pid, value=2 * E18)
    world.accept(jid)
    assert exposure(world, pid) == (2 * E18, 0)
    assert_balanced(world)


def test_accept__exposure_is_per_pact(world):
    pid_a, _ = world.create_pact()
    pid_b, _ = world.create_pact(spec_hash=b"\x02" * 32)
    world.stake_agent()
    a = world.open(pid_a, value=2 * E18)
    b = world.open(pid_b, value=2 * E18)
    world.accept(a)
    world.accept(b)
    assert exposure(world, pid_a) == exposure(world, pid_b) == (2 * E18, 0)


def test_finalize__pass_below_step__cap_raised_by_value(world):
    pid, _t = world.create_pact()
    passed(world, pid, 2 * E18 // 5, stake=10 * E18)
    assert exposure(world, pid) == (0, 2 * E18 // 5)
    # the new cap is exact: 2.4 ETH accepted, 2.4 ETH + 1 wei refused
    over = world.open(pid, value=12 * E18 // 5 + 1)
    with boa.reverts("escrow: exposure cap"):
        world.accept(over)
    jid = world.open(pid, value=12 * E18 // 5)
    world.accept(jid)
    assert exposure(world, pid) == (12 * E18 // 5, 2 * E18 // 5)
    assert_balanced(world)


def test_finalize__pass_above_step__cap_raised_by_step(world):
    pid, t = world.create_pact()
    passed(world, pid, 3 * E18 // 2, stake=10 * E18)
    assert exposure(world, pid) == (0, t.cap_step)
    passed(world, pid, 3 * E18 // 2)
    assert exposure(world, pid) == (0, 2 * t.cap_step)


def test_finalize__passes__cap_stops_at_max(world):
    pid, _t = world.create_pact(cap_max=5 * E18 // 2)
    passed(world, pid, 3 * E18 // 2, stake=10 * E18)
    assert exposure(world, pid) == (0, E18 // 2)  # cap_max - cap_initial
    passed(world, pid, E18)
    assert exposure(world, pid) == (0, E18 // 2)
    jid = world.open(pid, value=5 * E18 // 2 + 1)
    with boa.reverts("escrow: exposure cap"):
        world.accept(jid)


@pytest.mark.parametrize(("value", "bonus"), [(E18 - 1, 0), (E18, E18)])
def test_finalize__pass_vs_min_expansion_value__raised_only_at_or_above(world, value, bonus):
    pid, _t = world.create_pact(min_expansion_value=E18)
    passed(world, pid, value, stake=10 * E18)
    assert exposure(world, pid) == (0, bonus)


def test_finalize__partial__cap_left(world):
    pid, _t = world.create_pact()
    passed(world, pid, E18, stake=10 * E18)
    jid = to_verdict(world, pid, [6500] * 3, value=E18, stake=0)
    finalize_after_window(world, jid)
    assert exposure(world, pid) == (0, E18)


def test_finalize__fail__cap_reset_open_jobs_untouched(world):
    pid, _t = world.create_pact()
    passed(world, pid, E18, stake=10 * E18)
    other = world.open(pid, value=E18 // 2)
    world.accept(other)
    jid = to_verdict(world, pid, [1000] * 3, value=E18, stake=0)
    assert exposure(world, pid) == (3 * E18 // 2, E18)
    finalize_after_window(world, jid)
    assert exposure(world, pid) == (E18 // 2, 0)
    assert world.job(other)["state"] == 2  # still ACCEPTED
    assert_balanced(world)


def test_expire__no_delivery__cap_reset_open_jobs_untouched(world):
    pid, _t = world.create_pact()
    passed(world, pid, E18, stake=10 * E18)
    jid = world.open(pid, value=E18)
    world.accept(jid)
    warp_to(world, world.job(jid)["deadline"] - 10)
    other = world.open(pid, value=E18 // 2)
    world.accept(other)
    warp_to(world, world.job(jid)["deadline"] + 1)
    expire(world, jid)
    assert exposure(world, pid) == (E18 // 2, 0)
    assert_balanced(world)


def test_expire__silence__cap_left(world):
    pid, _t = world.create_pact()
    passed(world, pid, E18, stake=10 * E18)
    jid = submitted(world, pid, E18, stake=0)
    world.settle(jid, votes_for(world, jid, [9000]))
    warp_to(world, world.job(jid)["deadline"] + 1)
    expire(world, jid)
    assert world.job(jid)["state"] == 9
    assert exposure(world, pid) == (0, E18)
    assert_balanced(world)


def test_finalize__settlement__value_leaves_open_value(world):
    pid, _t = world.create_pact()
    jid = to_verdict(world, pid, [6500] * 3, value=E18, stake=10 * E18)
    assert exposure(world, pid) == (E18, 0)
    finalize_after_window(world, jid)
    assert exposure(world, pid) == (0, 0)

"""open: funding, reservations of the committee's penalties, and every refusal."""

import boa

from pactbond import money
from tests.contracts.conftest import E18, ETH, EVAL_PENALTY, HOUR, keccak_str
from tests.contracts.unit.escrow.conftest import OPEN, ev_stake, pause, the_event

PENALTY = EVAL_PENALTY


def _open_raw(world, pid, t, value, agent=None, amount=None, cv=None, av=None, sender=None):
    """open with every argument explicit (world.open always pays the right amount)."""
    cv0, av0 = world.versions(t)
    with boa.env.prank((sender or world.buyer).address):
        return world.escrow.open(
            t.as_tuple(), pid, (agent or world.agent).address if agent != ETH else ETH, value,
            cv0 if cv is None else cv, av0 if av is None else av,
            value=value + t.evaluator_fee if amount is None else amount)


def test_open__eth__funds_job_and_reserves_each_member_penalty(world):
    pid, t = world.create_pact()
    balance0 = boa.env.get_balance(world.escrow.address)
    buyer0 = boa.env.get_balance(world.buyer.address)
    jid = world.open(pid, E18)
    now = world.now()
    j = world.job(jid)
    assert jid == 1 and world.escrow.job_count() == 1
    assert j["state"] == OPEN
    assert (j["buyer"], j["agent"], j["pact_id"]) == (world.buyer.address, world.agent.address, pid)
    assert (j["value"], j["fee"]) == (E18, t.evaluator_fee)
    assert j["deadline"] == now + t.accept_window
    assert (j["cv"], j["av"]) == world.versions(t)
    assert j["reserved"] == 0b111
    assert boa.env.get_balance(world.escrow.address) == balance0 + E18 + t.evaluator_fee
    assert boa.env.get_balance(world.buyer.address) == buyer0 - E18 - t.evaluator_fee
    for m in world.evaluators:
        assert ev_stake(world, m)[:2] == (20 * E18, PENALTY)
    for m in world.appeal_evaluators:
        assert ev_stake(world, m)[1] == 0  # nothing is reserved for round 1


def test_open__eth__emits_job_opened(world):
    pid, t = world.create_pact()
    cv, av = world.versions(t)
    jid = world.open(pid, E18)
    ev = the_event(world, "JobOpened")
    assert (ev.job_id, ev.pact_id, ev.buyer, ev.agent) == (jid, pid, world.buyer.address, world.agent.address)
    assert (ev.value, ev.fee, ev.committee_version, ev.appeal_version) == (E18, t.evaluator_fee, cv, av)
    assert (ev.reserved, ev.accept_deadline) == (0b111, world.now() + HOUR)


def test_open__revoked_member__is_not_reserved(world):
    pid, _ = world.create_pact()
    with boa.env.prank(world.evaluators[0].address):
        world.registry.revoke_key()
    jid = world.open(pid, E18)
    assert world.job(jid)["reserved"] == 0b110
    assert ev_stake(world, world.evaluators[0])[1] == 0
    assert ev_stake(world, world.evaluators[1])[1] == PENALTY


def test_open__unknown_pact__reverts(world):
    _, t = world.create_pact()
    with boa.reverts("escrow: wrong pact terms"):
        _open_raw(world, 99, t, E18)


def test_open__altered_terms__reverts(world):
    pid, t = world.create_pact()
    altered = t.model_copy(update={"evaluator_fee": 0})
    with boa.reverts("escrow: wrong pact terms"):
        _open_raw(world, pid, altered, E18)


def test_open__zero_value__reverts(world):
    pid, t = world.create_pact()
    with boa.reverts("escrow: zero value"):
        _open_raw(world, pid, t, 0)


def test_open__value_plus_fee_reaches_2_128__reverts(world):
    pid, t = world.create_pact()
    with boa.reverts("escrow: value too large"):
        _open_raw(world, pid, t, 2**128 - t.evaluator_fee, amount=0)


def test_open__zero_agent__reverts(world):
    pid, t = world.create_pact()
    with boa.reverts("escrow: zero agent"):
        _open_raw(world, pid, t, E18, agent=ETH)


def test_open__buyer_is_agent__reverts(world):
    pid, t = world.create_pact()
    with boa.reverts("escrow: buyer is agent"):
        _open_raw(world, pid, t, E18, agent=world.buyer)


def test_open__member_pending_withdrawal_leaves_less_than_bond__reverts(world):
    pid, _ = world.create_pact()
    # stake - pending == bond exactly: still serves
    with boa.env.prank(world.evaluators[0].address):
        world.escrow.request_unstake(ETH, 10 * E18)
    world.open(pid, E18)
    with boa.env.prank(world.evaluators[1].address):
        world.escrow.request_unstake(ETH, 10 * E18 + 1)
    with boa.reverts("escrow: member stake below bond"):
        world.open(pid, E18)


def test_open__member_stake_reserved_by_earlier_jobs__reverts(world):
    pid, _ = world.create_pact()
    for _ in range(4):  # 4 x penalty 5 = the whole 20 ETH stake reserved
        world.open(pid, E18)
    assert ev_stake(world, world.evaluators[0])[1] == 4 * PENALTY
    with boa.reverts("escrow: member stake reserved"):
        world.open(pid, E18)


def test_open__one_active_member_threshold_two__reverts(world):
    pid, _ = world.create_pact()
    for m in world.evaluators[1:]:
        with boa.env.prank(m.address):
            world.registry.revoke_key()
    with boa.reverts("escrow: committee quorum unavailable"):
        world.open(pid, E18)


def _bound_pact(world):
    # bond = value (bond_bps 100%), slash = ceil(bond / 4): value + fee + slash <= (3 - 2 + 1) x 5 ETH
    pid, t = world.create_pact(bond_bps=10_000, bond_cap=10 * E18, slash_bps=2500)
    limit = 7_992 * 10**15  # 7.992 + 0.01 + 1.998 = 10 ETH exactly
    assert money.committee_bound(limit, t, 3, 2, PENALTY)
    assert not money.committee_bound(limit + 1, t, 3, 2, PENALTY)
    return pid, limit


def test_open__value_above_committee_stake__reverts(world):
    pid, limit = _bound_pact(world)
    with boa.reverts("escrow: value above committee stake"):
        world.open(pid, limit + 1)


def test_open__value_at_committee_stake__opens(world):
    pid, limit = _bound_pact(world)
    jid = world.open(pid, limit)
    assert world.job(jid)["value"] == limit


def test_open__revoked_member_shrinks_committee_stake__reverts(world):
    # L = 2, T = 2: the bound is one penalty (5 ETH)
    pid, _ = world.create_pact()
    with boa.env.prank(world.evaluators[2].address):
        world.registry.revoke_key()
    with boa.reverts("escrow: value above committee stake"):
        world.open(pid, 5 * E18)


def test_open__eth_without_the_fee__reverts(world):
    pid, t = world.create_pact()
    with boa.reverts("escrow: wrong ETH amount"):
        _open_raw(world, pid, t, E18, amount=E18)


def test_open__paused__reverts(world):
    pid, _ = world.create_pact()
    pause(world)
    with boa.reverts("escrow: paused"):
        world.open(pid, E18)


def test_open__pact_not_approved__reverts(world):
    pid, _ = world.create_pact(approve=False)
    with boa.reverts("escrow: pact not approved"):
        world.open(pid, E18)


def test_open__unexpected_committee_version__reverts(world):
    pid, t = world.create_pact()
    cv, _ = world.versions(t)
    with boa.reverts("escrow: committee changed"):
        _open_raw(world, pid, t, E18, cv=cv + 1)


def test_job__never_opened__reverts_unknown_job(world):
    """ADR 011: the `job` view is gone; a never-opened job's word reads zero, and every job
    call on it reverts "escrow: unknown job" (the fields cannot matter: none were committed)."""
    _, t = world.create_pact()
    assert world.escrow.job_word(1) == (0, 0)
    with boa.env.prank(world.agent.address), boa.reverts("escrow: unknown job"):
        world.escrow.accept(1, t.as_tuple())
    with boa.env.prank(world.agent.address), boa.reverts("escrow: unknown job"):
        world.escrow.submit(1, t.as_tuple(), keccak_str("d"), "")

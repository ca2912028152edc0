"""The direction of the slash's rounding (RELIABILITY C4, C13): slashed = ceil(bond x slash_bps
/ 10,000), so the slashed agent never keeps a fraction of a wei it owes. Every case here has a
remainder (ceil != floor), on both paths that slash: a failed verdict and an expiry without
delivery. The rest of the bond goes back to free stake to the wei; the slash is split floor-wise
with the remainder to the buyer."""

from __future__ import annotations

import pytest

from tests.contracts.conftest import E18
from tests.contracts.unit.escrow.conftest import expire
from tests.contracts.unit.settlement.conftest import (
    EXPIRED_NO_DELIVERY,
    SETTLED,
    assert_balanced,
    credit,
    delta,
    events,
    finalize_after_window,
    snapshot,
    to_verdict,
)

STAKE = 10 * E18

# (value, bond_bps, slash_bps): bond = ceil(value x bond_bps / 10,000)
CASES = {
    "bond-2e17+2-slash-3333": (E18 + 7, 2000, 3333),
    "bond-1-wei-slash-half": (1, 2000, 5000),
    "bond-1-wei-slash-1bps": (1, 2000, 1),
    "bond-3-wei-slash-9999": (11, 2000, 9999),
}


def ceil_bps(x: int, bps: int) -> int:
    return -(-x * bps // 10_000)


@pytest.mark.parametrize("path", ["finalize-fail", "expire-no-delivery"])
@pytest.mark.parametrize("case", list(CASES))
def test_slash__remainder__rounded_up_against_the_agent(world, case, path):
    value, bond_bps, slash_bps = CASES[case]
    pid, t = world.create_pact(bond_bps=bond_bps, slash_bps=slash_bps)
    bond = ceil_bps(value, bond_bps)
    slash = ceil_bps(bond, slash_bps)
    assert slash == bond * slash_bps // 10_000 + 1  # the premise: a remainder to round
    before = snapshot(world)
    if path == "finalize-fail":
        jid = to_verdict(world, pid, [0, 0, 0], value=value, stake=STAKE)
        logs = finalize_after_window(world, jid)
        (ev,) = events(logs, "JobSettled")
        state = SETTLED
    else:
        world.stake_agent(STAKE)
        jid = world.open(pid, value=value)
        world.accept(jid)
        world.warp(t.work_window + 1)
        expire(world, jid)
        (ev,) = events(world.facet.get_logs(), "JobExpired")
        state = EXPIRED_NO_DELIVERY
    assert world.job(jid)["state"] == state
    assert ev.slashed == slash
    d = delta(snapshot(world), before)
    # the agent staked STAKE: all of it is free again except exactly the slash
    assert d["free"] == STAKE - slash and d["locked"] == 0
    ins, burn = slash * t.slash_insurance_bps // 10_000, slash * t.slash_burn_bps // 10_000
    assert d["insurance"] == ins and d["burned"] == burn
    refund = value + t.evaluator_fee if path == "expire-no-delivery" else value
    fee_dust = 0 if path == "expire-no-delivery" else t.evaluator_fee - 3 * (t.evaluator_fee // 3)
    assert d["buyer"] == refund + fee_dust + slash - ins - burn
    assert credit(world, world.agent) == 0
    money = world.escrow.agent_money(world.agent.address, t.asset)
    assert money >> 128 == slash  # the slashed lane of the agent's record
    assert_balanced(world)

"""A committee version with a zero evaluator penalty can hold no job (RELIABILITY C2).

The committee's reserved penalties answer for everything its votes can move, so with penalty 0
the bound is 0 and every open is refused, even for 1 wei with no fee. That is why
escrow_core._end_reservations's early exit for a zero penalty is never reached by a job (the
coverage report lists it among the lines without code of their own)."""

from __future__ import annotations

import boa
import pytest

from tests.conftest import actor
from tests.contracts.conftest import E18


@pytest.mark.parametrize("value", [1, E18])
def test_open__zero_penalty_committee__value_above_committee_stake(world, value):
    members = [actor(f"zero-penalty-{i}") for i in range(3)]
    world.fund(*members)
    cid = world.create_committee(members, 2, penalty=0, stake=20 * E18)
    assert world.registry.roster(world.registry.current_version(cid))[3] == 0  # penalty
    pid, _ = world.create_pact(committee_id=cid, evaluator_fee=0)
    jobs = world.escrow.job_count()
    with boa.reverts("escrow: value above committee stake"):
        world.open(pid, value)
    assert world.escrow.job_count() == jobs
    # the same pact terms on a committee with a penalty open
    pid2, _ = world.create_pact(evaluator_fee=0)
    jid = world.open(pid2, value)
    assert world.job(jid)["value"] == value

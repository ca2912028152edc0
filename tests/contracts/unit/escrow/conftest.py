"""Helpers for the escrow's stake and job-path tests: events of the last call, counter lanes,
ERC-20 committees and pacts, and driving a job to a settled verdict."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from boa.contracts.base_evm_contract import RawLogEntry

from tests.conftest import Actor
from tests.contracts.conftest import E18, ETH

OPEN, ACCEPTED, SUBMITTED, VERDICT, CHALLENGED, SETTLED = 1, 2, 3, 4, 5, 6
CANCELLED, EXPIRED_NO_DELIVERY, EXPIRED_NO_VERDICT = 7, 8, 9

# 32-bit counter lanes of agent_counts / pact_counts
C_SETTLED, C_PASSED, C_PARTIAL, C_FAILED, C_NO_DELIVERY, C_NO_VERDICT, C_CHALLENGES, C_SEVENTH = range(8)

MAX_UINT = 2**256 - 1
U128 = 2**128


def lanes(word: int) -> list[int]:
    return [(word >> (32 * i)) & 0xFFFFFFFF for i in range(8)]


def one_lane(i: int) -> list[int]:
    """The lanes of a counter word with exactly lane i bumped once."""
    return [1 if k == i else 0 for k in range(8)]


def events(world, name: str, contract: Any = None) -> list[Any]:
    """Decoded events called `name` from the last call on `contract` (default: the escrow).
    The facet is bound at the escrow's address, so logs are decoded with both ABIs."""
    out = []
    for e in (contract or world.escrow).get_logs(strict=False):
        if isinstance(e, RawLogEntry):
            for c in (world.escrow, world.facet):
                try:
                    e = c.decode_log(e)
                    break
                except ValueError:
                    continue
        if type(e).__name__ == name:
            out.append(e)
    return out


def the_event(world, name: str, contract: Any = None) -> Any:
    evs = events(world, name, contract)
    assert len(evs) == 1, f"expected one {name}, got {evs}"
    return evs[0]


def ev_stake(world, who: Actor, asset: str = ETH) -> tuple[int, int, int, int]:
    """(stake, reserved, pending, unlock time)."""
    return world.escrow.evaluator_stake(who.address, asset)


def agent_stake(world, asset: str = ETH, who: Actor | None = None) -> tuple[int, int]:
    """(free, locked)."""
    return world.escrow.agent_stake((who or world.agent).address, asset)


def credit(world, who: Actor, asset: str = ETH) -> int:
    return world.escrow.credits(who.address, asset)


def pause(world, paused: bool = True) -> None:
    with boa.env.prank(world.guardian.address):
        world.registry.set_paused(paused)


def cancel(world, jid: int, sender: Actor | None = None, terms: Any = None) -> None:
    with boa.env.prank((sender or world.buyer).address):
        world.facet.cancel(jid, terms or world.terms_of(jid))


def expire(world, jid: int, sender: Actor | None = None, terms: Any = None) -> None:
    with boa.env.prank((sender or world.attacker).address):
        world.facet.expire(jid, terms or world.terms_of(jid))


def settle_all(world, jid: int, score: int) -> None:
    """Every committee member votes `score` (round 0 closes early); finalize after the
    challenge window unless the pact has none (then the last vote settled the job)."""
    t = world.pacts[world.job(jid)["pact_id"]]
    world.settle(jid, [world.vote(m, jid, score) for m in world.evaluators])
    if t.challenge_window > 0:
        world.warp(t.challenge_window + 1)
        with boa.env.prank(world.attacker.address):
            world.escrow.finalize(jid, t.as_tuple())
    assert world.job(jid)["state"] == SETTLED


def accepted_job(world, pid: int, value: int = E18) -> int:
    jid = world.open(pid, value)
    world.accept(jid)
    return jid


def submitted_job(world, pid: int, value: int = E18) -> int:
    jid = accepted_job(world, pid, value)
    world.submit(jid)
    return jid


# -- fixtures -------------------------------------------------------------------------------

@pytest.fixture
def token(world, erc20_deployer):
    """A standard 18-decimals token (deployed inside the world's anchor)."""
    return erc20_deployer.deploy("Test Dollar", "TUSD", 18, 0)


# -- ERC-20 ----------------------------------------------------------------------------------

def token_pact(world, token: Any, unit: int = E18, approve_buyer: bool = True,
               **over: Any) -> tuple[int, Any]:
    """Allow `token`, fund and approve every role, create a committee and an appeal committee in
    it (bond 10 units, penalty 5, members staked 20), and an approved pact in it; the pact's
    amounts are the ETH defaults scaled to `unit`."""
    with boa.env.prank(world.owner.address):
        world.registry.set_asset_allowed(token.address, True)
    members = [*world.evaluators, *world.appeal_evaluators]
    for a in [world.buyer, world.agent, world.attacker, *members]:
        token.mint(a.address, 1000 * unit)
        if a is not world.buyer or approve_buyer:
            with boa.env.prank(a.address):
                token.approve(world.escrow.address, MAX_UINT)
    cid = world.create_committee(world.evaluators, 2, bond=10 * unit, penalty=5 * unit, asset=token.address)
    acid = world.create_committee(world.appeal_evaluators, 2, bond=10 * unit, penalty=5 * unit, asset=token.address)
    for m in members:
        with boa.env.prank(m.address):
            world.escrow.stake(token.address, 20 * unit, True)
    amounts = dict(
        asset=token.address, committee_id=cid, appeal_committee_id=acid, bond_cap=10 * unit,
        evaluator_fee=unit // 100, challenge_bond=unit // 10, appeal_fee=3 * unit // 100,
        cap_initial=2 * unit, cap_step=unit, cap_max=5 * unit,
    )
    amounts.update(over)
    return world.create_pact(**amounts)


def stake_token(world, token: Any, amount: int, who: Actor | None = None,
                evaluator: bool = False) -> None:
    with boa.env.prank((who or world.agent).address):
        world.escrow.stake(token.address, amount, evaluator)



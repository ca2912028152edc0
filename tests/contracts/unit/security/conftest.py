"""Helpers for the security gauntlet (RELIABILITY C5-C13): the books of one asset (the escrow's
balance against the sum of every ledger it keeps), hostile mocks, and small job drivers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boa

from tests.conftest import Actor
from tests.contracts.conftest import ETH

OPEN, ACCEPTED, SUBMITTED, VERDICT, CHALLENGED, SETTLED = 1, 2, 3, 4, 5, 6
CANCELLED, EXPIRED_NO_DELIVERY, EXPIRED_NO_VERDICT = 7, 8, 9
NON_TERMINAL = (OPEN, ACCEPTED, SUBMITTED, VERDICT, CHALLENGED)
MAX_UINT = 2**256 - 1
U128 = 2**128


def account(address: str, name: str = "contract") -> Any:
    """An address in the shape of an Actor (for contracts that hold claims)."""
    return SimpleNamespace(address=address, name=name)


def everyone(world: Any, extra: tuple[Any, ...] = ()) -> list[Any]:
    return [world.owner, world.guardian, world.admin, world.pact_owner, world.buyer, world.agent,
            *world.evaluators, *world.appeal_evaluators, world.insurance, world.attacker, *extra]


def ledger_total(world: Any, asset: str, extra: tuple[Any, ...] = ()) -> int:
    """Agent stake (free + locked) + evaluator stake (incl. pending) + credits of every account
    the test used, + burned, + value and fee of live jobs in `asset`, + challenge bonds of
    challenged ones: what DESIGN's first money invariant says the escrow must hold."""
    esc = world.escrow
    total = esc.burned(asset)
    seen: set[str] = set()
    for a in everyone(world, extra):
        if a.address in seen:
            continue
        seen.add(a.address)
        free, locked = esc.agent_stake(a.address, asset)
        total += free + locked + esc.evaluator_stake(a.address, asset)[0]
        total += esc.credits(a.address, asset)
    for jid in range(1, esc.job_count() + 1):
        j = world.job(jid)
        t = world.pacts[j["pact_id"]]
        if t.asset.lower() != asset.lower():
            continue
        if j["state"] in NON_TERMINAL:
            total += j["value"] + j["fee"]
        if j["state"] == CHALLENGED:
            total += t.challenge_bond
    return total


def held(world: Any, asset: str, token: Any = None) -> int:
    if asset == ETH:
        return boa.env.get_balance(world.escrow.address)
    return token.balanceOf(world.escrow.address)


def assert_books(world: Any, asset: str = ETH, token: Any = None,
                 extra: tuple[Any, ...] = ()) -> None:
    """The escrow holds exactly what its ledgers owe in `asset` (not merely at least)."""
    assert held(world, asset, token) == ledger_total(world, asset, extra)


def warp_to(world: Any, ts: int) -> None:
    now = world.now()
    assert ts >= now, f"cannot go back from {now} to {ts}"
    if ts > now:
        world.warp(ts - now)


def pause(world: Any, paused: bool = True) -> None:
    with boa.env.prank(world.guardian.address):
        world.registry.set_paused(paused)


def call_as(who: Actor | Any, fn: Any, *args: Any, **kw: Any) -> Any:
    with boa.env.prank(who.address):
        return fn(*args, **kw)


def top_up_members(world: Any, amount: int = 40 * 10**18) -> None:
    """More ETH evaluator stake for the fixture's round-0 members: each open job reserves a
    penalty (5 ETH) from every one of them, so the fixture's 20 ETH backs four jobs at once."""
    for m in world.evaluators:
        with boa.env.prank(m.address):
            world.escrow.stake(ETH, amount, True, value=amount)

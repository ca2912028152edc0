"""Helpers for the settlement tests: driving a job to a verdict, reading counters, and the
money invariant (the escrow's ETH balance equals the sum of every ledger)."""

from __future__ import annotations

from typing import Any

import boa

from tests.conftest import Actor
from tests.contracts.conftest import E18, ETH

OPEN, ACCEPTED, SUBMITTED, VERDICT, CHALLENGED, SETTLED = 1, 2, 3, 4, 5, 6
CANCELLED, EXPIRED_NO_DELIVERY, EXPIRED_NO_VERDICT = 7, 8, 9
NON_TERMINAL = (OPEN, ACCEPTED, SUBMITTED, VERDICT, CHALLENGED)

# counter lanes (32 bits each)
C_SETTLED, C_PASSED, C_PARTIAL, C_FAILED, C_NO_DELIVERY, C_NO_VERDICT, C_CHALLENGES, C_SEVENTH = range(8)
U128 = 2**128


def lane(word: int, i: int) -> int:
    return (word >> (32 * i)) & 0xFFFFFFFF


def lanes(word: int) -> list[int]:
    return [lane(word, i) for i in range(8)]


def money_split(word: int) -> tuple[int, int]:
    """(released, slashed) of an agent_money / pact_money word."""
    return word % U128, word >> 128


def agent_lanes(world) -> list[int]:
    return lanes(world.escrow.agent_counts(world.agent.address))


def pact_lanes(world, pid: int) -> list[int]:
    return lanes(world.escrow.pact_counts(pid))


def free(world, who: Actor | None = None) -> int:
    return world.escrow.agent_stake((who or world.agent).address, ETH)[0]


def locked(world, who: Actor | None = None) -> int:
    return world.escrow.agent_stake((who or world.agent).address, ETH)[1]


def credit(world, who: Actor) -> int:
    return world.escrow.credits(who.address, ETH)


def ev_stake(world, who: Actor) -> tuple[int, int, int, int]:
    """(stake, reserved, pending, unlock time)."""
    return world.escrow.evaluator_stake(who.address, ETH)


def burned(world) -> int:
    return world.escrow.burned(ETH)


def everyone(world, extra: tuple[Actor, ...] = ()) -> list[Actor]:
    return [world.owner, world.guardian, world.admin, world.pact_owner, world.buyer, world.agent,
            *world.evaluators, *world.appeal_evaluators, world.insurance, world.attacker, *extra]


def ledger_sum(world, extra: tuple[Actor, ...] = ()) -> int:
    """Agent stake (free + locked) + evaluator stake + open job value and fee + credits +
    burned + challenge bonds of challenged jobs, over the actors the test used."""
    esc = world.escrow
    total = burned(world)
    for a in everyone(world, extra):
        f, lk = esc.agent_stake(a.address, ETH)
        total += f + lk + esc.evaluator_stake(a.address, ETH)[0] + esc.credits(a.address, ETH)
    for jid in range(1, esc.job_count() + 1):
        j = world.job(jid)
        if j["state"] in NON_TERMINAL:
            total += j["value"] + j["fee"]
        if j["state"] == CHALLENGED:
            total += world.pacts[j["pact_id"]].challenge_bond
    return total


def assert_balanced(world, extra: tuple[Actor, ...] = ()) -> None:
    assert boa.env.get_balance(world.escrow.address) == ledger_sum(world, extra)


def warp_to(world, ts: int) -> None:
    """Set the chain's timestamp to exactly `ts` (never backwards)."""
    now = world.now()
    assert ts >= now
    if ts > now:
        world.warp(ts - now)


def submitted(world, pid: int, value: int = E18, stake: int = 10 * E18) -> int:
    """A job opened, accepted and submitted under `pid`; the agent is staked `stake` first."""
    if stake:
        world.stake_agent(stake)
    jid = world.open(pid, value=value)
    world.accept(jid)
    world.submit(jid)
    return jid


def votes_for(world, jid: int, scores: list[int], members: list[Actor] | None = None,
              round_: int = 0) -> list[tuple[Any, ...]]:
    members = members or (world.evaluators if round_ == 0 else world.appeal_evaluators)
    return [world.vote(m, jid, s, round_=round_) for m, s in zip(members, scores, strict=False)]


def to_verdict(world, pid: int, scores: list[int], value: int = E18, stake: int = 10 * E18) -> int:
    """Submitted job with round-0 votes `scores` from evaluators[0..] posted in one call."""
    jid = submitted(world, pid, value=value, stake=stake)
    world.settle(jid, votes_for(world, jid, scores))
    return jid


def finalize(world, jid: int, sender: Actor | None = None) -> list[Any]:
    """Finalize; returns the call's decoded logs."""
    terms = world.terms_of(jid)
    with boa.env.prank((sender or world.attacker).address):
        world.escrow.finalize(jid, terms)
    return world.escrow.get_logs()


def finalize_after_window(world, jid: int) -> list[Any]:
    """Warp past the challenge deadline C = close + challenge window, then finalize."""
    j = world.job(jid)
    t = world.pacts[j["pact_id"]]
    warp_to(world, max(world.now(), j["close_at"] + t.challenge_window + 1))
    return finalize(world, jid)


def challenge(world, jid: int, who: Actor, expected: int | None = None,
              value: int | None = None) -> list[Any]:
    j = world.job(jid)
    t = world.pacts[j["pact_id"]]
    s0 = world.escrow.median_score(jid, 0) if expected is None else expected
    if j["close_at"] < j["deadline"] and world.now() <= j["close_at"]:
        warp_to(world, j["close_at"] + 1)  # after an early close, the challenge comes after it
    with boa.env.prank(who.address):
        world.facet.challenge(jid, t.as_tuple(), s0,
                              value=t.challenge_bond if value is None else value)
    return world.facet.get_logs()


def resolve(world, jid: int, sender: Actor | None = None) -> list[Any]:
    """Resolve; returns the call's decoded logs."""
    terms = world.terms_of(jid)
    with boa.env.prank((sender or world.attacker).address):
        world.facet.resolve(jid, terms)
    return world.facet.get_logs()


def events(logs: list[Any], name: str) -> list[Any]:
    """The decoded logs named `name` (pass a call's logs, read right after the call)."""
    return [e for e in logs if type(e).__name__ == name]


def snapshot(world) -> dict[str, Any]:
    """Every balance a settlement can move, for before/after deltas."""
    return dict(
        free=free(world), locked=locked(world), burned=burned(world),
        buyer=credit(world, world.buyer), agent=credit(world, world.agent),
        insurance=credit(world, world.insurance),
        voters=[credit(world, m) for m in world.evaluators],
        appeal=[credit(world, m) for m in world.appeal_evaluators],
        stakes=[ev_stake(world, m)[:2] for m in world.evaluators],
    )


def delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in after.items():
        if isinstance(v, list):
            out[k] = [
                tuple(a - b for a, b in zip(x, y, strict=True)) if isinstance(x, tuple) else x - y
                for x, y in zip(v, before[k], strict=True)
            ]
        else:
            out[k] = v - before[k]
    return out


def evidence_of(jid: int, member: Actor) -> bytes:
    """The evidence hash the world's vote helper signs by default."""
    from tests.contracts.conftest import keccak_str

    return keccak_str(f"evidence:{jid}:{member.name}")


def assert_settlement(d: dict[str, Any], s: Any, bond_: int, voters: tuple[int, ...]) -> None:
    """A snapshot delta across a terminal settlement equals a pactbond.money.Settlement."""
    assert d["free"] == s.to_agent + s.bond_returned
    assert d["locked"] == -bond_
    assert d["buyer"] == s.to_buyer
    assert d["voters"] == [s.fee_each if i in voters else 0 for i in range(3)]
    assert d["insurance"] == s.to_insurance
    assert d["burned"] == s.burned
    assert d["agent"] == 0

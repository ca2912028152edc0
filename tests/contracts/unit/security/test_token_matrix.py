"""RELIABILITY C8: the token matrix. Each kind of ERC-20 either works end to end with the books
exact after every step (the escrow's token balance equals the sum of every ledger in that
token) or is refused with a clear reason:

- standard 18 and 6 decimals, no return value (USDT-like), false-returning: work;
- blocklisting: works; a blocklisted payee cannot block anyone else's settlement or withdrawal,
  and can still take its own credit to another address;
- pausable: settlements go on while the token is paused (they only credit); transfers in and
  out wait for the unpause;
- fee-on-transfer: refused at every pull with "escrow: fee-on-transfer token" (a token that
  turns it on later: test_reentrancy.py);
- a token taken off the allowlist: jobs in flight finish and pay; new pacts and committees are
  refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boa
import pytest

from tests.contracts.conftest import HOUR
from tests.contracts.unit.escrow.conftest import token_pact
from tests.contracts.unit.security.conftest import (
    CANCELLED,
    EXPIRED_NO_DELIVERY,
    SETTLED,
    assert_books,
    call_as,
)

MODE_STANDARD, MODE_FALSE, MODE_FEE = 0, 2, 3


def vote_all(world: Any, jid: int, score: int, round_: int = 0) -> None:
    members = world.appeal_evaluators if round_ else world.evaluators
    votes = [world.vote(m, jid, score, round_=round_) for m in members]
    (world.appeal if round_ else world.settle)(jid, votes)


def lifecycle(world: Any, tok: Any, unit: int, in_flight: Callable[[], None] = lambda: None,
              before_withdrawals: Callable[[], None] = lambda: None,
              payee_to: Callable[[Any], str] = lambda a: a.address) -> None:
    """Pass, fail, overturned challenge, no delivery and cancel in `tok`, then every party
    withdraws everything (to payee_to(party)); the books are checked after every step."""
    esc, fac = world.escrow, world.facet
    pid, t = token_pact(world, tok, unit)

    def books() -> None:
        assert_books(world, tok.address, tok)

    books()
    call_as(world.agent, esc.stake, tok.address, 10 * unit, False)
    books()
    value = unit // 2
    a, b, c, d = (world.open(pid, value) for _ in range(4))
    books()
    for j in (a, b, c, d):
        world.accept(j)
    for j, score in ((a, 9000), (b, 1000), (c, 9000)):
        world.submit(j)
        vote_all(world, j, score)
    world.warp(1)
    call_as(world.buyer, fac.challenge, c, t.as_tuple(), 9000)  # pulls the bond in the token
    vote_all(world, c, 2000, round_=1)
    books()
    in_flight()
    world.warp(t.challenge_window + 1)
    for j in (a, b):
        call_as(world.attacker, esc.finalize, j, t.as_tuple())
        books()
    call_as(world.attacker, fac.resolve, c, t.as_tuple())
    books()
    world.warp(t.work_window)
    call_as(world.attacker, fac.expire, d, t.as_tuple())
    books()
    assert [world.job(j)["state"] for j in (a, b, c, d)] == [SETTLED] * 3 + [EXPIRED_NO_DELIVERY]
    before_withdrawals()
    e = world.open(pid, value)
    call_as(world.buyer, fac.cancel, e, t.as_tuple())
    assert world.job(e)["state"] == CANCELLED
    books()
    # everyone leaves with what it is owed
    parties = [world.buyer, world.insurance, *world.evaluators, *world.appeal_evaluators]
    for p in parties:
        owed = esc.credits(p.address, tok.address)
        if owed:
            to = payee_to(p)
            bal = tok.balanceOf(to)
            call_as(p, esc.withdraw, tok.address, to)
            assert tok.balanceOf(to) - bal == owed
            books()
    free = esc.agent_stake(world.agent.address, tok.address)[0]
    to = payee_to(world.agent)
    bal = tok.balanceOf(to)
    call_as(world.agent, esc.withdraw_stake, tok.address, free, to)
    assert tok.balanceOf(to) - bal == free
    books()
    m = world.evaluators[0]
    left = esc.evaluator_stake(m.address, tok.address)[0]
    call_as(m, esc.request_unstake, tok.address, left)
    world.warp(esc.EVALUATOR_COOLDOWN())
    call_as(m, esc.withdraw_evaluator_stake, tok.address)
    books()
    # what stays: the other members' stakes and what was burned
    stays = esc.burned(tok.address) + sum(esc.evaluator_stake(x.address, tok.address)[0]
                                          for x in [*world.evaluators, *world.appeal_evaluators])
    assert tok.balanceOf(esc.address) == stays


@pytest.mark.parametrize(("decimals", "mode"), [(18, MODE_STANDARD), (6, MODE_STANDARD), (18, MODE_FALSE)],
                         ids=["18-decimals", "6-decimals", "false-returning"])
def test_token__standard_kinds__work_with_exact_books(world, erc20_deployer, decimals, mode):
    tok = erc20_deployer.deploy("Token", "TKN", decimals, mode)
    lifecycle(world, tok, 10**decimals)


def test_token__no_return_value_usdt_like__works_with_exact_books(world, no_return_deployer):
    tok = no_return_deployer.deploy("Tether-like", "USDTL", 6)
    lifecycle(world, tok, 10**6)


def test_token__false_returning__shortfall_refused_with_reason_state_unchanged(world, erc20_deployer):
    tok = erc20_deployer.deploy("False", "FALSE", 18, MODE_FALSE)
    unit = 10**18
    pid, t = token_pact(world, tok, unit)
    call_as(world.agent, world.escrow.stake, tok.address, 10 * unit, False)
    jid = world.open(pid, unit)
    world.accept(jid)
    world.submit(jid)
    vote_all(world, jid, 9000)
    world.warp(1)
    call_as(world.buyer, tok.approve, world.escrow.address, 0)  # the bond cannot be pulled
    with boa.reverts("escrow: token transfer failed"):
        call_as(world.buyer, world.facet.challenge, jid, t.as_tuple(), 9000)
    assert world.job(jid)["state"] == 4  # still VERDICT
    with boa.reverts("escrow: token transfer failed"):
        world.open(pid, unit)
    assert_books(world, tok.address, tok)


def test_token__blocklisting__blocked_payees_block_nobody_and_take_theirs_elsewhere(world, erc20_deployer):
    tok = erc20_deployer.deploy("Blocky", "BLK", 18, MODE_STANDARD)
    elsewhere = world.pact_owner  # where a blocked payee sends its money instead
    # blocked mid-flight: the agent (paid into its stake), the insurance (slash share) and a
    # member (fees): every settlement still completes and everyone else is paid
    blocked = {world.agent.address, world.insurance.address, world.evaluators[1].address}

    def block() -> None:
        for a in blocked:
            tok.set_blocked(a, True)

    def payee_to(p: Any) -> str:
        if p.address not in blocked:
            return p.address
        with boa.reverts("escrow: token transfer failed"):
            if p.address == world.agent.address:
                call_as(p, world.escrow.withdraw_stake, tok.address, 1)
            else:
                call_as(p, world.escrow.withdraw, tok.address)
        return elsewhere.address

    lifecycle(world, tok, 10**18, in_flight=block, payee_to=payee_to)


def test_token__pausable__settlements_go_on_transfers_wait(world, erc20_deployer):
    tok = erc20_deployer.deploy("Pausy", "PAU", 18, MODE_STANDARD)
    unit = 10**18

    def pause_token() -> None:
        tok.set_paused(True)

    def while_paused_then_unpause() -> None:
        # every settlement above ran with the token paused; transfers wait
        with boa.reverts("escrow: token transfer failed"):
            call_as(world.buyer, world.escrow.withdraw, tok.address)
        with boa.reverts("escrow: token transfer failed"):
            call_as(world.agent, world.escrow.withdraw_stake, tok.address, 1)
        with boa.reverts("escrow: token transfer failed"):
            world.open(world.escrow.pact_count(), unit // 2)
        tok.set_paused(False)

    lifecycle(world, tok, unit, in_flight=pause_token, before_withdrawals=while_paused_then_unpause)


def test_token__fee_on_transfer__refused_at_every_pull_with_its_reason(world, erc20_deployer):
    tok = erc20_deployer.deploy("Fee", "FEE", 18, MODE_FEE)
    with boa.env.prank(world.owner.address):
        world.registry.set_asset_allowed(tok.address, True)
    for who, evaluator in ((world.agent, False), (world.evaluators[0], True)):
        tok.mint(who.address, 10**20)
        call_as(who, tok.approve, world.escrow.address, 2**256 - 1)
        with boa.reverts("escrow: fee-on-transfer token"):
            call_as(who, world.escrow.stake, tok.address, 10**18, evaluator)
    # no member can hold stake in it, so no job can ever open on it
    cid = world.create_committee(world.evaluators, 2, bond=10**18, penalty=10**18, asset=tok.address)
    acid = world.create_committee(world.appeal_evaluators, 2, bond=10**18, penalty=10**18, asset=tok.address)
    pid, _ = world.create_pact(asset=tok.address, committee_id=cid, appeal_committee_id=acid)
    tok.mint(world.buyer.address, 10**20)
    call_as(world.buyer, tok.approve, world.escrow.address, 2**256 - 1)
    with boa.reverts("escrow: member stake below bond"):
        world.open(pid, 10**18)
    assert tok.balanceOf(world.escrow.address) == 0


def test_token__delisted_mid_flight__jobs_finish_and_pay_new_pacts_refused(world, erc20_deployer):
    tok = erc20_deployer.deploy("Delisted", "DEL", 18, MODE_STANDARD)

    def delist() -> None:
        with boa.env.prank(world.owner.address):
            world.registry.set_asset_allowed(tok.address, False)
        with boa.reverts("pact: asset not allowed"):
            world.create_pact(asset=tok.address)

    # the cancel job at the end opens on the existing pact: the allowlist governs new pacts only
    lifecycle(world, tok, 10**18, in_flight=delist)
    assert world.registry.asset_allowed(tok.address) is False
    with boa.reverts("committee: asset not allowed"):
        world.create_committee(world.evaluators, 2, asset=tok.address)


def test_token__challenge_window_in_token__bond_accounted_while_challenged(world, erc20_deployer):
    """The challenge bond is in the books while the job is challenged, and leaves them exactly
    as the appeal splits it."""
    tok = erc20_deployer.deploy("Bond", "BND", 18, MODE_STANDARD)
    unit = 10**18
    pid, t = token_pact(world, tok, unit)
    call_as(world.agent, world.escrow.stake, tok.address, 10 * unit, False)
    jid = world.open(pid, unit)
    world.accept(jid)
    world.submit(jid)
    vote_all(world, jid, 9000)
    world.warp(1)
    held = tok.balanceOf(world.escrow.address)
    call_as(world.buyer, world.facet.challenge, jid, t.as_tuple(), 9000)
    assert tok.balanceOf(world.escrow.address) - held == t.challenge_bond
    assert_books(world, tok.address, tok)
    world.warp(HOUR + 1)
    call_as(world.attacker, world.facet.resolve, jid, t.as_tuple())  # no round-1 quorum: bond back
    assert world.escrow.credits(world.buyer.address, tok.address) >= t.challenge_bond
    assert_books(world, tok.address, tok)

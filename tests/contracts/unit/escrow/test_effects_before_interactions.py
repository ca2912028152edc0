"""Checks-effects-interactions on every way money leaves the escrow (RELIABILITY C4, C7).

The reentrancy lock already refuses a re-entering recipient; these tests hold the second line of
defence on its own: in the escrow's frame of withdraw, withdraw_stake and withdraw_evaluator_stake
every storage write (SSTORE) comes before the one outgoing CALL, so a recipient that ran code
mid-call could only ever see the ledgers already debited. Read from the executed opcode trace of
the escrow's own frame. (Deposits pull first and then credit: _pull checks the balance delta,
under the same lock.)"""

from __future__ import annotations

from typing import Any

import boa
import pytest
from eth_utils import to_canonical_address

from tests.contracts.conftest import COOLDOWN, E18, ETH
from tests.contracts.unit.escrow.conftest import (
    cancel,
    credit,
    ev_stake,
    stake_token,
    token_pact,
)

SSTORE, CALL, DELEGATECALL = 0x55, 0xF1, 0xF4


def frame_ops(comp: Any) -> list[int]:
    """The opcodes a frame executed, in order."""
    code = comp.code
    return [code._raw_code_bytes[pc] for pc in code._trace]


def storage_frame(comp: Any) -> Any:
    """The frame that ran the function on the escrow's storage: the escrow's own, or, for a
    facet function (ADR 011: withdraw_evaluator_stake runs in PactEscrowBatch, reached by
    PactEscrow -> PactEscrowAppeals -> PactEscrowBatch), the innermost of the one-child
    delegatecall chain, where nothing else was executed on the way."""
    while (len(comp.children) == 1 and comp.children[0].msg.to == comp.msg.to  # same storage
           and SSTORE not in frame_ops(comp) and frame_ops(comp).count(DELEGATECALL) == 1):
        comp = comp.children[0]
    return comp


def assert_writes_then_one_call(contract: Any, to: str, value: int) -> None:
    comp = storage_frame(contract._computation)
    ops = frame_ops(comp)
    stores = [i for i, op in enumerate(ops) if op == SSTORE]
    calls = [i for i, op in enumerate(ops) if op == CALL]
    assert stores, "the payout wrote no ledger"
    assert len(calls) == 1, f"expected one outgoing CALL, got {len(calls)}"
    assert max(stores) < calls[0], "a ledger is written after the outgoing call"
    assert len(comp.children) == 1
    child = comp.children[0]
    assert child.msg.to == to_canonical_address(to)
    assert child.msg.value == value


def test_withdraw__eth_credit__ledger_zeroed_before_the_transfer(world):
    pid, _ = world.create_pact()
    jid = world.open(pid, value=E18)
    cancel(world, jid)
    owed = credit(world, world.buyer)
    assert owed > 0
    before = boa.env.get_balance(world.buyer.address)
    with boa.env.prank(world.buyer.address):
        assert world.escrow.withdraw(ETH) == owed
    assert_writes_then_one_call(world.escrow, world.buyer.address, owed)
    assert credit(world, world.buyer) == 0
    assert boa.env.get_balance(world.buyer.address) == before + owed


def test_withdraw__token_credit__ledger_zeroed_before_the_token_call(world, token):
    pid, t = token_pact(world, token)
    jid = world.open(pid, value=E18)
    cancel(world, jid)
    owed = credit(world, world.buyer, token.address)
    assert owed == E18 + t.evaluator_fee
    before = token.balanceOf(world.buyer.address)
    with boa.env.prank(world.buyer.address):
        assert world.escrow.withdraw(token.address, world.insurance.address) == owed
    assert_writes_then_one_call(world.escrow, token.address, 0)
    assert credit(world, world.buyer, token.address) == 0
    assert token.balanceOf(world.insurance.address) == owed
    assert token.balanceOf(world.buyer.address) == before


@pytest.mark.parametrize("asset", ["eth", "token"])
def test_withdraw_stake__free_stake_debited_before_the_transfer(world, token, asset):
    amount = 3 * E18
    if asset == "eth":
        world.stake_agent(amount)
        addr, to, value = ETH, world.agent.address, amount
    else:
        token_pact(world, token)
        stake_token(world, token, amount)
        addr, to, value = token.address, token.address, 0
    with boa.env.prank(world.agent.address):
        world.escrow.withdraw_stake(addr, amount)
    assert_writes_then_one_call(world.escrow, to, value)
    assert world.escrow.agent_stake(world.agent.address, addr) == (0, 0)


def test_withdraw_evaluator_stake__pending_cleared_before_the_transfer(world):
    member = world.evaluators[0]
    stake, reserved, _, _ = ev_stake(world, member)
    amount = stake - reserved
    with boa.env.prank(member.address):
        world.escrow.request_unstake(ETH, amount)
    world.warp(COOLDOWN)
    before = boa.env.get_balance(member.address)
    with boa.env.prank(member.address):
        world.escrow.withdraw_evaluator_stake(ETH)
    assert_writes_then_one_call(world.escrow, member.address, amount)
    assert ev_stake(world, member)[2:] == (0, 0)
    assert boa.env.get_balance(member.address) == before + amount

"""stake, withdraw_stake, request_unstake, withdraw_evaluator_stake and withdraw (credits)."""

import boa

from tests.contracts.conftest import COOLDOWN, E18, ETH, EVAL_PENALTY
from tests.contracts.unit.escrow.conftest import (
    agent_stake,
    credit,
    ev_stake,
    settle_all,
    stake_token,
    submitted_job,
    the_event,
    token_pact,
)

U128 = 2**128


# -- stake ---------------------------------------------------------------------------------

def test_stake__eth_agent__free_stake_and_balance_rise(world):
    balance0 = boa.env.get_balance(world.escrow.address)
    wallet0 = boa.env.get_balance(world.agent.address)
    with boa.env.prank(world.agent.address):
        world.escrow.stake(ETH, 3 * E18, False, value=3 * E18)
    ev = the_event(world, "Staked")
    assert agent_stake(world) == (3 * E18, 0)
    assert boa.env.get_balance(world.escrow.address) == balance0 + 3 * E18
    assert boa.env.get_balance(world.agent.address) == wallet0 - 3 * E18
    assert (ev.account, ev.asset, ev.amount, ev.evaluator) == (world.agent.address, ETH, 3 * E18, False)


def test_stake__eth_evaluator__evaluator_stake_rises(world):
    member = world.evaluators[0]
    balance0 = boa.env.get_balance(world.escrow.address)
    with boa.env.prank(member.address):
        world.escrow.stake(ETH, 2 * E18, True, value=2 * E18)
    ev = the_event(world, "Staked")
    assert ev_stake(world, member) == (22 * E18, 0, 0, 0)
    assert agent_stake(world, who=member) == (0, 0)
    assert boa.env.get_balance(world.escrow.address) == balance0 + 2 * E18
    assert (ev.account, ev.amount, ev.evaluator) == (member.address, 2 * E18, True)


def test_stake__erc20_agent__pulls_tokens_into_free_stake(world, token):
    token_pact(world, token)
    held0 = token.balanceOf(world.escrow.address)
    stake_token(world, token, 7 * E18)
    assert agent_stake(world, token.address) == (7 * E18, 0)
    assert token.balanceOf(world.escrow.address) == held0 + 7 * E18
    assert token.balanceOf(world.agent.address) == 993 * E18
    assert agent_stake(world) == (0, 0)  # the ETH ledger is separate


def test_stake__erc20_evaluator__pulls_tokens_into_evaluator_stake(world, token):
    token_pact(world, token)
    member = world.evaluators[1]
    held0 = token.balanceOf(world.escrow.address)
    stake_token(world, token, 4 * E18, who=member, evaluator=True)
    assert ev_stake(world, member, token.address)[0] == 24 * E18
    assert ev_stake(world, member)[0] == 20 * E18  # ETH stake untouched
    assert token.balanceOf(world.escrow.address) == held0 + 4 * E18


def test_stake__zero_amount__reverts(world):
    with boa.env.prank(world.agent.address), boa.reverts("stake: zero amount"):
        world.escrow.stake(ETH, 0, False)


def test_stake__eth_value_differs_from_amount__reverts(world):
    with boa.env.prank(world.agent.address), boa.reverts("escrow: wrong ETH amount"):
        world.escrow.stake(ETH, 2 * E18, False, value=E18)


def test_stake__eth_sent_with_token_stake__reverts(world, token):
    token_pact(world, token)
    with boa.env.prank(world.agent.address), boa.reverts("escrow: ETH sent to a token pact"):
        world.escrow.stake(token.address, E18, False, value=E18)


def test_stake__agent_free_reaches_2_128__reverts(world):
    boa.env.set_balance(world.agent.address, 2 * U128)
    with boa.env.prank(world.agent.address), boa.reverts("stake: amount too large"):
        world.escrow.stake(ETH, U128, False, value=U128)


def test_stake__evaluator_stake_reaches_2_128__reverts(world):
    member = world.evaluators[0]
    amount = U128 - 20 * E18  # with the 20 ETH already staked: exactly 2**128
    boa.env.set_balance(member.address, U128)
    with boa.env.prank(member.address), boa.reverts("stake: amount too large"):
        world.escrow.stake(ETH, amount, True, value=amount)


# -- withdraw_stake -------------------------------------------------------------------------

def test_withdraw_stake__free_stake__sends_eth_to_caller(world):
    world.stake_agent(5 * E18)
    wallet0 = boa.env.get_balance(world.agent.address)
    with boa.env.prank(world.agent.address):
        world.escrow.withdraw_stake(ETH, 2 * E18)
    ev = the_event(world, "StakeWithdrawn")
    assert agent_stake(world) == (3 * E18, 0)
    assert boa.env.get_balance(world.agent.address) == wallet0 + 2 * E18
    assert (ev.account, ev.asset, ev.amount, ev.evaluator) == (world.agent.address, ETH, 2 * E18, False)


def test_withdraw_stake__to_another_address__sends_to_recipient(world):
    world.stake_agent(5 * E18)
    agent0 = boa.env.get_balance(world.agent.address)
    other0 = boa.env.get_balance(world.insurance.address)
    with boa.env.prank(world.agent.address):
        world.escrow.withdraw_stake(ETH, 5 * E18, world.insurance.address)
    assert agent_stake(world) == (0, 0)
    assert boa.env.get_balance(world.insurance.address) == other0 + 5 * E18
    assert boa.env.get_balance(world.agent.address) == agent0


def test_withdraw_stake__more_than_free_with_bond_locked__reverts(world):
    pid, _ = world.create_pact()
    world.stake_agent(5 * E18)
    world.accept(world.open(pid, E18))  # locks a bond of 0.2 ETH
    free, locked = agent_stake(world)
    assert (free, locked) == (5 * E18 - E18 // 5, E18 // 5)
    with boa.env.prank(world.agent.address), boa.reverts("stake: exceeds free stake"):
        world.escrow.withdraw_stake(ETH, free + 1)
    with boa.env.prank(world.agent.address):
        world.escrow.withdraw_stake(ETH, free)
    assert agent_stake(world) == (0, E18 // 5)


def test_withdraw_stake__zero_amount__reverts(world):
    world.stake_agent(E18)
    with boa.env.prank(world.agent.address), boa.reverts("stake: zero amount"):
        world.escrow.withdraw_stake(ETH, 0)


def test_withdraw_stake__zero_recipient__reverts(world):
    world.stake_agent(E18)
    with boa.env.prank(world.agent.address), boa.reverts("stake: zero recipient"):
        world.escrow.withdraw_stake(ETH, E18, ETH)


def test_withdraw_stake__recipient_refuses_eth__reverts(world):
    world.stake_agent(E18)
    # the registry has no payable fallback
    with boa.env.prank(world.agent.address), boa.reverts("escrow: ETH transfer failed"):
        world.escrow.withdraw_stake(ETH, E18, world.registry.address)
    assert agent_stake(world) == (E18, 0)


# -- request_unstake ------------------------------------------------------------------------

def test_request_unstake__unreserved_stake__records_pending_and_unlock_time(world):
    member = world.evaluators[0]
    with boa.env.prank(member.address):
        world.escrow.request_unstake(ETH, 8 * E18)
    ev = the_event(world, "UnstakeRequested")
    unlock = world.now() + COOLDOWN
    assert world.escrow.EVALUATOR_COOLDOWN() == COOLDOWN
    assert ev_stake(world, member) == (20 * E18, 0, 8 * E18, unlock)
    assert (ev.account, ev.asset, ev.amount, ev.unlock_at) == (member.address, ETH, 8 * E18, unlock)


def test_request_unstake__zero_amount__reverts(world):
    with boa.env.prank(world.evaluators[0].address), boa.reverts("stake: zero amount"):
        world.escrow.request_unstake(ETH, 0)


def test_request_unstake__more_than_stake__reverts(world):
    with boa.env.prank(world.evaluators[0].address), boa.reverts("stake: exceeds unreserved stake"):
        world.escrow.request_unstake(ETH, 20 * E18 + 1)


def test_request_unstake__stake_reserved_by_open_job__reverts(world):
    pid, _ = world.create_pact()
    world.open(pid, E18)  # reserves a penalty (5 ETH) of every member
    member = world.evaluators[0]
    assert ev_stake(world, member)[:2] == (20 * E18, EVAL_PENALTY)
    with boa.env.prank(member.address), boa.reverts("stake: exceeds unreserved stake"):
        world.escrow.request_unstake(ETH, 20 * E18 - EVAL_PENALTY + 1)
    with boa.env.prank(member.address):
        world.escrow.request_unstake(ETH, 20 * E18 - EVAL_PENALTY)
    assert ev_stake(world, member)[2] == 15 * E18


def test_request_unstake__second_request__adds_to_pending_and_restarts_cooldown(world):
    member = world.evaluators[0]
    with boa.env.prank(member.address):
        world.escrow.request_unstake(ETH, 4 * E18)
    world.warp(10 * 24 * 3600)
    with boa.env.prank(member.address):
        world.escrow.request_unstake(ETH, 6 * E18)
    restarted = world.now() + COOLDOWN
    assert ev_stake(world, member)[2:] == (10 * E18, restarted)
    with boa.env.prank(member.address), boa.reverts("stake: exceeds unreserved stake"):
        world.escrow.request_unstake(ETH, 10 * E18 + 1)  # pending counts against the stake


# -- withdraw_evaluator_stake ---------------------------------------------------------------

def _request(world, member, amount):
    with boa.env.prank(member.address):
        world.escrow.request_unstake(ETH, amount)
    return ev_stake(world, member)[3]


def test_withdraw_evaluator_stake__nothing_pending__reverts(world):
    with boa.env.prank(world.evaluators[0].address), boa.reverts("stake: nothing pending"):
        world.escrow.withdraw_evaluator_stake(ETH)


def test_withdraw_evaluator_stake__one_second_before_unlock__reverts(world):
    member = world.evaluators[0]
    unlock = _request(world, member, 5 * E18)
    world.warp(unlock - 1 - world.now())
    assert world.now() == unlock - 1
    with boa.env.prank(member.address), boa.reverts("stake: cooldown not over"):
        world.escrow.withdraw_evaluator_stake(ETH)


def test_withdraw_evaluator_stake__at_unlock_time__sends_pending(world):
    member = world.evaluators[0]
    unlock = _request(world, member, 5 * E18)
    world.warp(unlock - world.now())
    wallet0 = boa.env.get_balance(member.address)
    balance0 = boa.env.get_balance(world.escrow.address)
    with boa.env.prank(member.address):
        world.escrow.withdraw_evaluator_stake(ETH)
    ev = the_event(world, "StakeWithdrawn")
    assert ev_stake(world, member) == (15 * E18, 0, 0, 0)
    assert boa.env.get_balance(member.address) == wallet0 + 5 * E18
    assert boa.env.get_balance(world.escrow.address) == balance0 - 5 * E18
    assert (ev.account, ev.amount, ev.evaluator) == (member.address, 5 * E18, True)


def test_withdraw_evaluator_stake__to_another_address__sends_to_recipient(world):
    member = world.evaluators[0]
    unlock = _request(world, member, 5 * E18)
    world.warp(unlock - world.now())
    member0 = boa.env.get_balance(member.address)
    other0 = boa.env.get_balance(world.insurance.address)
    with boa.env.prank(member.address):
        world.escrow.withdraw_evaluator_stake(ETH, world.insurance.address)
    assert boa.env.get_balance(world.insurance.address) == other0 + 5 * E18
    assert boa.env.get_balance(member.address) == member0
    assert ev_stake(world, member)[0] == 15 * E18


def test_withdraw_evaluator_stake__zero_recipient__reverts(world):
    member = world.evaluators[0]
    unlock = _request(world, member, 5 * E18)
    world.warp(unlock - world.now())
    with boa.env.prank(member.address), boa.reverts("stake: zero recipient"):
        world.escrow.withdraw_evaluator_stake(ETH, ETH)


# -- withdraw (credits) ---------------------------------------------------------------------

def _buyer_credit(world) -> int:
    """Settle a failed job: the buyer is credited the value, the fee remainder and the slash's
    buyer share."""
    pid, _ = world.create_pact()
    world.stake_agent()
    settle_all(world, submitted_job(world, pid), 1000)
    c = credit(world, world.buyer)
    assert c > E18
    return c


def test_withdraw__credit__sends_it_and_zeroes_the_credit(world):
    c = _buyer_credit(world)
    wallet0 = boa.env.get_balance(world.buyer.address)
    balance0 = boa.env.get_balance(world.escrow.address)
    with boa.env.prank(world.buyer.address):
        sent = world.escrow.withdraw(ETH)
    ev = the_event(world, "Withdrawn")
    assert sent == c
    assert credit(world, world.buyer) == 0
    assert boa.env.get_balance(world.buyer.address) == wallet0 + c
    assert boa.env.get_balance(world.escrow.address) == balance0 - c
    assert (ev.account, ev.asset, ev.to, ev.amount) == (world.buyer.address, ETH, world.buyer.address, c)


def test_withdraw__to_another_address__sends_to_recipient(world):
    c = _buyer_credit(world)
    buyer0 = boa.env.get_balance(world.buyer.address)
    other0 = boa.env.get_balance(world.insurance.address)
    with boa.env.prank(world.buyer.address):
        world.escrow.withdraw(ETH, world.insurance.address)
    assert boa.env.get_balance(world.insurance.address) == other0 + c
    assert boa.env.get_balance(world.buyer.address) == buyer0
    assert credit(world, world.buyer) == 0


def test_withdraw__no_credit__reverts(world):
    with boa.env.prank(world.buyer.address), boa.reverts("escrow: nothing to withdraw"):
        world.escrow.withdraw(ETH)


def test_withdraw__zero_recipient__reverts(world):
    _buyer_credit(world)
    with boa.env.prank(world.buyer.address), boa.reverts("escrow: zero recipient"):
        world.escrow.withdraw(ETH, ETH)

"""ERC-20 pacts: full lifecycles (18 and 6 decimals, a token whose transfers return nothing),
open_with_permit, and misbehaving tokens (fee-on-transfer, false-returning, blocklisting,
pausing)."""

import boa
from eth_abi import encode
from eth_hash.auto import keccak

from pactbond import eip712, money
from tests.contracts.conftest import E18, ETH
from tests.contracts.unit.escrow.conftest import (
    OPEN,
    SETTLED,
    agent_stake,
    credit,
    settle_all,
    stake_token,
    submitted_job,
    token_pact,
)

PERMIT_TYPEHASH = keccak(b"Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)")
MODE_FALSE, MODE_FEE = 2, 3


def _lifecycle(world, token, unit):
    """Stake, open, accept, submit, pass, finalize and withdraw everything in `token`; the
    escrow ends holding exactly the evaluator stakes."""
    pid, t = token_pact(world, token, unit)
    escrow = world.escrow.address
    held0 = token.balanceOf(escrow)
    assert held0 == 6 * 20 * unit  # the members' evaluator stakes
    stake_token(world, token, 10 * unit)
    buyer0 = token.balanceOf(world.buyer.address)
    value = unit
    jid = submitted_job(world, pid, value)
    assert token.balanceOf(escrow) == held0 + 10 * unit + value + t.evaluator_fee
    assert token.balanceOf(world.buyer.address) == buyer0 - value - t.evaluator_fee
    assert agent_stake(world, token.address) == (10 * unit - money.bond(t, value), money.bond(t, value))
    settle_all(world, jid, 9000)
    s = money.settle(t, value, 9000, 3)
    assert agent_stake(world, token.address) == (10 * unit + value, 0)
    assert credit(world, world.buyer, token.address) == s.to_buyer
    # everyone leaves with its money
    with boa.env.prank(world.agent.address):
        world.escrow.withdraw_stake(token.address, 10 * unit + value)
    for m in world.evaluators:
        with boa.env.prank(m.address):
            assert world.escrow.withdraw(token.address) == s.fee_each
        assert token.balanceOf(m.address) == 1000 * unit - 20 * unit + s.fee_each
    if s.to_buyer:
        with boa.env.prank(world.buyer.address):
            world.escrow.withdraw(token.address)
    assert token.balanceOf(world.agent.address) == 1000 * unit + value
    assert token.balanceOf(world.buyer.address) == buyer0 - value - t.evaluator_fee + s.to_buyer
    assert token.balanceOf(escrow) == held0


def test_lifecycle__erc20_18_decimals__pays_out_in_token(world, token):
    _lifecycle(world, token, E18)


def test_lifecycle__erc20_6_decimals__pays_out_in_token(world, erc20_deployer):
    usdc = erc20_deployer.deploy("Six Dollar", "SIX", 6, 0)
    _lifecycle(world, usdc, 10**6)


def test_lifecycle__token_returning_nothing__pays_out_in_token(world, no_return_deployer):
    usdt = no_return_deployer.deploy("Tether-like", "USDTL", 6)
    _lifecycle(world, usdt, 10**6)


def test_open__token_returning_nothing_without_allowance__reverts(world, no_return_deployer):
    usdt = no_return_deployer.deploy("Tether-like", "USDTL", 6)
    pid, _ = token_pact(world, usdt, 10**6, approve_buyer=False)
    with boa.reverts("escrow: token transfer failed"):
        world.open(pid, 10**6)


def test_open__token_pact_with_eth__reverts(world, token):
    pid, t = token_pact(world, token)
    cv, av = world.versions(t)
    with boa.env.prank(world.buyer.address), boa.reverts("escrow: ETH sent to a token pact"):
        world.escrow.open(t.as_tuple(), pid, world.agent.address, E18, cv, av, value=1)


# -- open_with_permit -----------------------------------------------------------------------

def _permit(world, token, amount, deadline):
    """The buyer's EIP-2612 permit for the escrow: (v, r, s)."""
    nonce = token.nonces(world.buyer.address)
    struct = keccak(encode(["bytes32", "address", "address", "uint256", "uint256", "uint256"],
                           [PERMIT_TYPEHASH, world.buyer.address, world.escrow.address, amount, nonce, deadline]))
    sig = eip712.sign_digest(world.buyer.key, eip712.digest(token.DOMAIN_SEPARATOR(), struct))
    return sig[64], sig[:32], sig[32:64]


def _open_with_permit(world, pid, t, value, deadline, vrs):
    cv, av = world.versions(t)
    with boa.env.prank(world.buyer.address):
        return world.escrow.open_with_permit(t.as_tuple(), pid, world.agent.address, value, cv, av, deadline, *vrs)


def test_open_with_permit__signed_permit__opens_without_prior_approval(world, token):
    pid, t = token_pact(world, token, approve_buyer=False)
    assert token.allowance(world.buyer.address, world.escrow.address) == 0
    deadline = world.now() + 600
    buyer0 = token.balanceOf(world.buyer.address)
    jid = _open_with_permit(world, pid, t, E18, deadline, _permit(world, token, E18 + t.evaluator_fee, deadline))
    assert world.job(jid)["state"] == OPEN
    assert token.nonces(world.buyer.address) == 1
    assert token.allowance(world.buyer.address, world.escrow.address) == 0  # used exactly
    assert token.balanceOf(world.buyer.address) == buyer0 - E18 - t.evaluator_fee


def test_open_with_permit__permit_front_run__still_opens(world, token):
    pid, t = token_pact(world, token, approve_buyer=False)
    deadline = world.now() + 600
    v, r, s = _permit(world, token, E18 + t.evaluator_fee, deadline)
    # someone submits the buyer's permit first: the escrow's permit call then fails
    with boa.env.prank(world.attacker.address):
        token.permit(world.buyer.address, world.escrow.address, E18 + t.evaluator_fee, deadline, v, r, s)
    jid = _open_with_permit(world, pid, t, E18, deadline, (v, r, s))
    assert world.job(jid)["state"] == OPEN
    assert token.nonces(world.buyer.address) == 1
    assert token.allowance(world.buyer.address, world.escrow.address) == 0


def test_open_with_permit__bad_permit_and_no_allowance__reverts(world, token):
    pid, t = token_pact(world, token, approve_buyer=False)
    deadline = world.now() + 600
    v, r, s = _permit(world, token, E18, deadline)  # signed for less than value + fee
    with boa.reverts("escrow: token transfer failed"):
        _open_with_permit(world, pid, t, E18, deadline, (v, r, s))


def test_open_with_permit__eth_pact__reverts(world):
    pid, t = world.create_pact()
    with boa.reverts("escrow: permit needs a token"):
        _open_with_permit(world, pid, t, E18, world.now() + 600, (27, b"\x01" * 32, b"\x01" * 32))


# -- misbehaving tokens ---------------------------------------------------------------------

def test_stake__fee_on_transfer_token__reverts(world, erc20_deployer):
    fot = erc20_deployer.deploy("Fee Token", "FOT", 18, MODE_FEE)
    fot.mint(world.agent.address, 10 * E18)
    with boa.env.prank(world.agent.address):
        fot.approve(world.escrow.address, 10 * E18)
    with boa.env.prank(world.agent.address), boa.reverts("escrow: fee-on-transfer token"):
        world.escrow.stake(fot.address, 10 * E18, False)
    with boa.env.prank(world.agent.address), boa.reverts("escrow: fee-on-transfer token"):
        world.escrow.stake(fot.address, 10 * E18, True)


def test_stake__false_returning_token_without_allowance__reverts(world, erc20_deployer):
    bad = erc20_deployer.deploy("False Token", "FALSE", 18, MODE_FALSE)
    bad.mint(world.agent.address, 10 * E18)
    with boa.env.prank(world.agent.address), boa.reverts("escrow: token transfer failed"):
        world.escrow.stake(bad.address, E18, False)


def test_open__false_returning_token_without_allowance__reverts(world, erc20_deployer):
    bad = erc20_deployer.deploy("False Token", "FALSE", 18, MODE_FALSE)
    pid, _ = token_pact(world, bad, approve_buyer=False)  # members' stakes went through
    with boa.reverts("escrow: token transfer failed"):
        world.open(pid, E18)


def _failed_token_job(world, token):
    """A failed token job: the buyer and the insurance hold token credits, the evaluators their
    fees."""
    pid, t = token_pact(world, token)
    stake_token(world, token, 10 * E18)
    jid = submitted_job(world, pid, E18)
    settle_all(world, jid, 1000)
    assert world.job(jid)["state"] == SETTLED
    c = credit(world, world.buyer, token.address)
    assert c > E18 and credit(world, world.insurance, token.address) > 0
    return t, c


def test_withdraw__blocklisted_buyer__reverts_but_withdraw_to_other_works(world, token):
    _, c = _failed_token_job(world, token)
    token.set_blocked(world.buyer.address, True)
    with boa.env.prank(world.buyer.address), boa.reverts("escrow: token transfer failed"):
        world.escrow.withdraw(token.address)
    assert credit(world, world.buyer, token.address) == c  # the credit stays
    with boa.env.prank(world.buyer.address):
        world.escrow.withdraw(token.address, world.pact_owner.address)
    assert token.balanceOf(world.pact_owner.address) == c
    assert credit(world, world.buyer, token.address) == 0


def test_withdraw__blocklisted_buyer__blocks_nobody_else(world, token):
    _failed_token_job(world, token)
    token.set_blocked(world.buyer.address, True)
    ins = credit(world, world.insurance, token.address)
    with boa.env.prank(world.insurance.address):
        world.escrow.withdraw(token.address)
    assert token.balanceOf(world.insurance.address) == ins
    for m in world.evaluators:
        with boa.env.prank(m.address):
            world.escrow.withdraw(token.address)
        assert credit(world, m, token.address) == 0
    free = agent_stake(world, token.address)[0]
    with boa.env.prank(world.agent.address):
        world.escrow.withdraw_stake(token.address, free)
    assert agent_stake(world, token.address) == (0, 0)


def test_withdraw__paused_token__blocks_only_that_token(world, token, erc20_deployer):
    _, c = _failed_token_job(world, token)
    other = erc20_deployer.deploy("Other Token", "OTH", 18, 0)
    other.mint(world.agent.address, E18)
    with boa.env.prank(world.agent.address):
        other.approve(world.escrow.address, E18)
    stake_token(world, other, E18)
    world.stake_agent(E18)
    token.set_paused(True)
    with boa.env.prank(world.buyer.address), boa.reverts("escrow: token transfer failed"):
        world.escrow.withdraw(token.address)
    with boa.env.prank(world.agent.address), boa.reverts("escrow: token transfer failed"):
        world.escrow.withdraw_stake(token.address, E18)
    eth0 = boa.env.get_balance(world.agent.address)
    with boa.env.prank(world.agent.address):
        world.escrow.withdraw_stake(ETH, E18)
        world.escrow.withdraw_stake(other.address, E18)
    assert boa.env.get_balance(world.agent.address) == eth0 + E18
    assert other.balanceOf(world.agent.address) == E18
    token.set_paused(False)
    with boa.env.prank(world.buyer.address):
        assert world.escrow.withdraw(token.address) == c

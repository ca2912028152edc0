# pragma version 0.4.3
# pragma evm-version prague
"""
@title Test-only USDT-like ERC-20: transfer, transferFrom and approve return nothing
@license Apache-2.0
@notice Reverts on failure (insufficient balance or allowance) and returns no data on success,
        as USDT does on mainnet; callers that require a `bool` return value fail against it.
"""

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256


@deploy
def __init__(name: String[32], symbol: String[8], decimals: uint8):
    self.name = name
    self.symbol = symbol
    self.decimals = decimals


@external
def mint(to: address, amount: uint256):
    """
    @notice Mint `amount` to `to` (test-only: anyone may mint).
    """
    self.balanceOf[to] += amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@internal
def _move(sender: address, receiver: address, amount: uint256):
    assert self.balanceOf[sender] >= amount, "token: balance too low"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@external
def transfer(receiver: address, amount: uint256):
    """
    @notice Transfer; returns no value (USDT-like).
    """
    self._move(msg.sender, receiver, amount)


@external
def transferFrom(sender: address, receiver: address, amount: uint256):
    """
    @notice Transfer from an allowance; returns no value (USDT-like).
    """
    assert self.allowance[sender][msg.sender] >= amount, "token: allowance too low"
    self.allowance[sender][msg.sender] -= amount
    self._move(sender, receiver, amount)


@external
def approve(spender: address, amount: uint256):
    """
    @notice Set an allowance; returns no value (USDT-like).
    """
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)

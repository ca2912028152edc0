# pragma version 0.4.3
# pragma evm-version prague
"""
@title Test-only hostile ERC-20: re-enters on every hook, fee switchable at any time
@license Apache-2.0
@notice A standard ERC-20 (returns true, reverts on shortfall) with two test switches:
        - `arm(target, payloads)`: on every transfer and transferFrom, before moving any
          balance, the token calls `target` with each payload in turn (as itself, errors
          swallowed) and records how many attempts it made, how many succeeded, and the revert
          data of the last failure. A re-entrant escrow would let one of them through.
        - `set_fee_bps(bps)`: from then on every transfer delivers amount - fee (the fee is
          burned), as a token that turns fee-on-transfer after listing would.
        `execute` lets the token act as an account of its own (stake, withdraw) so that a
        re-entered call has something it could take.
"""

MAX_PAYLOADS: constant(uint256) = 16
MAX_PAYLOAD: constant(uint256) = 4096

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])

fee_bps: public(uint256)
target: public(address)
payloads: DynArray[Bytes[MAX_PAYLOAD], MAX_PAYLOADS]
attempts: public(uint256)
successes: public(uint256)
last_revert: public(Bytes[256])

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


@payable
@external
def __default__():
    """
    @notice Accepts ETH (withdrawals of the token's own ETH stake or credits).
    """
    pass


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@external
def set_fee_bps(bps: uint256):
    assert bps <= 10_000, "token: fee above 10000"
    self.fee_bps = bps


@external
def arm(target: address, payloads: DynArray[Bytes[MAX_PAYLOAD], MAX_PAYLOADS]):
    """
    @notice Re-enter `target` with every payload on every transfer hook (empty list: disarm).
    """
    self.target = target
    self.payloads = payloads


@external
def reset_counts():
    self.attempts = 0
    self.successes = 0
    self.last_revert = b""


@payable
@external
def execute(target: address, data: Bytes[MAX_PAYLOAD], amount: uint256) -> Bytes[256]:
    """
    @notice Call `target` as the token itself (test-only: anyone may call); reverts if it does.
    """
    return raw_call(target, data, max_outsize=256, value=amount)


@internal
def _hook():
    for p: Bytes[MAX_PAYLOAD] in self.payloads:
        self.attempts += 1
        ok: bool = False
        ret: Bytes[256] = b""
        ok, ret = raw_call(self.target, p, max_outsize=256, revert_on_failure=False)
        if ok:
            self.successes += 1
        else:
            self.last_revert = ret


@internal
def _move(sender: address, receiver: address, amount: uint256):
    self._hook()
    assert self.balanceOf[sender] >= amount, "token: balance too low"
    self.balanceOf[sender] -= amount
    fee: uint256 = amount * self.fee_bps // 10_000
    self.balanceOf[receiver] += amount - fee
    self.totalSupply -= fee
    log Transfer(sender=sender, receiver=receiver, value=amount - fee)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._move(msg.sender, receiver, amount)
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    assert self.allowance[sender][msg.sender] >= amount, "token: allowance too low"
    self.allowance[sender][msg.sender] -= amount
    self._move(sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True

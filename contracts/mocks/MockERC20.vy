# pragma version 0.4.3
"""
@title Test-only ERC-20 with EIP-2612 permit and switchable misbehaviour
@notice mode 0: standard; 2: returns false instead of reverting; 3: takes a 1% fee on
        transfer. set_blocked and set_paused make any mode blocklisting or pausable.
"""

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
nonces: public(HashMap[address, uint256])
mode: public(uint256)
blocked: public(HashMap[address, bool])
paused: public(bool)

PERMIT_TYPEHASH: constant(bytes32) = keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)")
DOMAIN_TYPEHASH: constant(bytes32) = keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256


@deploy
def __init__(name: String[32], symbol: String[8], decimals: uint8, mode: uint256):
    self.name = name
    self.symbol = symbol
    self.decimals = decimals
    self.mode = mode


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@external
def set_blocked(who: address, b: bool):
    self.blocked[who] = b


@external
def set_paused(p: bool):
    self.paused = p


@internal
def _move(sender: address, receiver: address, amount: uint256) -> bool:
    if self.mode == 2 and self.balanceOf[sender] < amount:
        return False
    assert not self.paused, "token: paused"
    assert not self.blocked[sender] and not self.blocked[receiver], "token: blocked"
    self.balanceOf[sender] -= amount
    received: uint256 = amount
    if self.mode == 3:
        fee: uint256 = amount // 100
        received = amount - fee
        self.totalSupply -= fee
    self.balanceOf[receiver] += received
    log Transfer(sender=sender, receiver=receiver, value=received)
    return True


@external
def transfer(receiver: address, amount: uint256) -> bool:
    return self._move(msg.sender, receiver, amount)


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    if self.mode == 2 and self.allowance[sender][msg.sender] < amount:
        return False
    self.allowance[sender][msg.sender] -= amount
    return self._move(sender, receiver, amount)


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@view
@external
def DOMAIN_SEPARATOR() -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, keccak256(self.name), keccak256("1"), chain.id, self))


@external
def permit(owner: address, spender: address, amount: uint256, deadline: uint256, v: uint8, r: bytes32, s: bytes32):
    assert block.timestamp <= deadline, "token: permit expired"
    nonce: uint256 = self.nonces[owner]
    digest: bytes32 = keccak256(concat(b"\x19\x01", keccak256(abi_encode(DOMAIN_TYPEHASH, keccak256(self.name), keccak256("1"), chain.id, self)), keccak256(abi_encode(PERMIT_TYPEHASH, owner, spender, amount, nonce, deadline))))
    signer: address = ecrecover(digest, v, r, s)
    assert signer != empty(address) and signer == owner, "token: bad permit"
    self.nonces[owner] = nonce + 1
    self.allowance[owner][spender] = amount
    log Approval(owner=owner, spender=spender, value=amount)

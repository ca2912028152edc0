# pragma version 0.4.3
# pragma evm-version prague
"""
@title Test-only ERC-1271 wallet that re-enters on every hook
@license Apache-2.0
@notice A contract committee member (or payee) whose owner key signs. `arm(target, payloads)`
        makes it call `target` with each payload on every hook:
        - isValidSignature (a static call): each payload is tried as a static call. The wallet
          answers the magic value only if the owner signed AND every attempt failed, so a vote
          that counts proves that no re-entry got through (the wallet cannot write there);
        - receiving ETH (a withdrawal to the wallet): each payload is tried as a call, and the
          attempts, successes and last revert data are recorded.
        `execute` lets the wallet act as itself (accept a version, stake, withdraw).
"""

MAX_PAYLOADS: constant(uint256) = 16
MAX_PAYLOAD: constant(uint256) = 2048
MAGIC: constant(bytes4) = 0x1626ba7e
INVALID: constant(bytes4) = 0xffffffff

owner: public(address)
target: public(address)
payloads: DynArray[Bytes[MAX_PAYLOAD], MAX_PAYLOADS]
attempts: public(uint256)
successes: public(uint256)
last_revert: public(Bytes[256])


@deploy
def __init__(owner: address):
    self.owner = owner


@external
def arm(target: address, payloads: DynArray[Bytes[MAX_PAYLOAD], MAX_PAYLOADS]):
    """
    @notice Re-enter `target` with every payload on every hook (empty list: disarm).
    """
    self.target = target
    self.payloads = payloads


@payable
@external
def execute(target: address, data: Bytes[MAX_PAYLOAD], amount: uint256) -> Bytes[256]:
    """
    @notice Call `target` as the wallet (test-only: anyone may call); reverts if it does.
    """
    return raw_call(target, data, max_outsize=256, value=amount)


@payable
@external
def __default__():
    """
    @notice Receiving ETH re-enters with every payload; failures are swallowed.
    """
    for p: Bytes[MAX_PAYLOAD] in self.payloads:
        self.attempts += 1
        ok: bool = False
        ret: Bytes[256] = b""
        ok, ret = raw_call(self.target, p, max_outsize=256, revert_on_failure=False)
        if ok:
            self.successes += 1
        else:
            self.last_revert = ret


@view
@internal
def _owner_signed(digest: bytes32, signature: Bytes[1040]) -> bool:
    if len(signature) < 65:
        return False
    r: uint256 = extract32(signature, 0, output_type=uint256)
    s: uint256 = extract32(signature, 32, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    signer: address = ecrecover(digest, v, r, s)
    return signer != empty(address) and signer == self.owner


@view
@external
def isValidSignature(digest: bytes32, signature: Bytes[1040]) -> bytes4:
    """
    @notice ERC-1271: the magic value only if the owner signed and no re-entry succeeded.
    """
    for p: Bytes[MAX_PAYLOAD] in self.payloads:
        ok: bool = False
        ret: Bytes[32] = b""
        ok, ret = raw_call(self.target, p, max_outsize=32, is_static_call=True, revert_on_failure=False)
        if ok:
            return INVALID
    if self._owner_signed(digest, signature):
        return MAGIC
    return INVALID

# pragma version 0.4.3
# pragma evm-version prague
"""
@title Test-only ERC-1271 wallet whose owner key signs, with switchable misbehaviour
@license Apache-2.0
@notice isValidSignature checks the first 65 bytes of the signature (r || s || v) against the
        owner, so longer signatures (a Safe-style concatenation) work. `mode` picks what it
        answers:
        0 MAGIC: 0x1626ba7e (32 bytes) for an owner signature, 0xffffffff otherwise;
        1 WRONG_MAGIC: 0xdeadbeef (32 bytes), whatever the signature;
        2 REVERT: reverts;
        3 BURN: loops until the gas it was given runs out;
        4 SHORT: the magic value as 4 bytes only (for an owner signature);
        5 LONG: the magic value (32 bytes) followed by 32 more bytes (for an owner signature).
"""

MAGIC: constant(bytes4) = 0x1626ba7e
INVALID: constant(bytes4) = 0xffffffff
WRONG: constant(bytes4) = 0xdeadbeef

MODE_MAGIC: constant(uint256) = 0
MODE_WRONG_MAGIC: constant(uint256) = 1
MODE_REVERT: constant(uint256) = 2
MODE_BURN: constant(uint256) = 3
MODE_SHORT: constant(uint256) = 4
MODE_LONG: constant(uint256) = 5

owner: public(address)
mode: public(uint256)


@deploy
def __init__(owner: address, mode: uint256):
    self.owner = owner
    self.mode = mode


@external
def set_mode(mode: uint256):
    """
    @notice Switch the behaviour (test-only: anyone may call).
    """
    assert mode <= MODE_LONG, "wallet: unknown mode"
    self.mode = mode


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
@raw_return
def isValidSignature(digest: bytes32, signature: Bytes[1040]) -> Bytes[64]:
    """
    @notice ERC-1271, answered as `mode` says.
    """
    mode: uint256 = self.mode
    if mode == MODE_REVERT:
        raise "wallet: rejected"
    if mode == MODE_BURN:
        x: bytes32 = digest
        for i: uint256 in range(100_000_000):
            x = keccak256(x)
        return concat(x, x)
    if mode == MODE_WRONG_MAGIC:
        return abi_encode(WRONG)
    if not self._owner_signed(digest, signature):
        return abi_encode(INVALID)
    if mode == MODE_SHORT:
        return concat(MAGIC, b"")
    if mode == MODE_LONG:
        return concat(abi_encode(MAGIC), abi_encode(MAGIC))
    return abi_encode(MAGIC)

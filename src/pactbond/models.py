"""Pydantic models of the objects that cross the contract boundary. Amounts are int wei."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

from eth_abi.abi import encode
from eth_utils.address import is_checksum_address, to_checksum_address
from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field, field_validator

BPS = 10_000
U256 = 2**256 - 1
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_HASH = b"\x00" * 32

# strict: a float (1.2345678901234567e18 in a JSON pact file) or a bool must not be rounded or
# coerced into immutable terms; they are refused with the field's name
Wei = Annotated[int, Field(strict=True, ge=0, le=U256)]
Bps = Annotated[int, Field(strict=True, ge=0, le=BPS)]
Seconds = Annotated[int, Field(strict=True, ge=0, lt=2**64)]


def _address(v: Any) -> str:
    if isinstance(v, bytes) and len(v) == 20:
        v = "0x" + v.hex()
    if not isinstance(v, str) or len(v) != 42 or not v.startswith("0x"):
        raise ValueError(f"not an address: {v!r}")
    try:
        int(v, 16)
    except ValueError:
        raise ValueError(f"not an address: {v!r}") from None
    if v != v.lower() and v != v.upper()[:2].lower() + v[2:].upper() and not is_checksum_address(v):
        raise ValueError(f"bad checksum in address {v}")
    return to_checksum_address(v)


def _bytes32(v: Any) -> bytes:
    if isinstance(v, str):
        s = v[2:] if v.startswith("0x") else v
        # bytes.fromhex skips whitespace inside: "ab ab ..." must not pass for a hash
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", s):
            raise ValueError(f"not a 32-byte hex value: {v!r}")
        v = bytes.fromhex(s)
    if not isinstance(v, bytes | bytearray) or len(v) != 32:
        raise ValueError(f"not 32 bytes: {v!r}")
    return bytes(v)


class PactTerms(BaseModel):
    """The immutable terms of a pact, in the contract's field order (its hash commits to them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    asset: str = ZERO_ADDRESS
    committee_id: Annotated[int, Field(strict=True, ge=1)]
    appeal_committee_id: Annotated[int, Field(strict=True, ge=1)]
    spec_hash: bytes
    fail_below_bps: Bps
    pass_at_bps: Bps
    bond_bps: Bps = 0
    bond_cap: Wei = 0
    slash_bps: Bps = 0
    slash_buyer_bps: Bps = BPS
    slash_insurance_bps: Bps = 0
    slash_burn_bps: Bps = 0
    insurance: str = ZERO_ADDRESS
    shadow: bool = False
    evaluator_fee: Wei = 0
    challenge_bond: Wei = 0
    appeal_fee: Wei = 0
    min_appeal_delta_bps: Annotated[int, Field(strict=True, ge=1, le=BPS)] = 1
    min_expansion_value: Wei = 0
    accept_window: Seconds
    work_window: Seconds
    eval_window: Seconds
    challenge_window: Seconds = 0
    appeal_window: Seconds = 0
    silence_release: bool = False
    cap_initial: Wei
    cap_step: Wei = 0
    cap_max: Wei

    @field_validator("asset", "insurance", mode="before")
    @classmethod
    def _addr(cls, v: Any) -> str:
        return _address(v)

    @field_validator("spec_hash", mode="before")
    @classmethod
    def _hash(cls, v: Any) -> bytes:
        return _bytes32(v)

    def as_tuple(self) -> tuple[Any, ...]:
        """The ABI tuple, fields in declaration order."""
        return tuple(getattr(self, name) for name in type(self).model_fields)

    def hash(self) -> bytes:
        """keccak256(abi.encode(terms)): the escrow's `pact_hash`, which every job's stored
        commitment also covers (ADR 012)."""
        return terms_hash(self.as_tuple())


#: PactTerms' ABI types, in field order (types.vy's struct)
TERMS_ABI = ["address", *["uint256"] * 2, "bytes32", *["uint256"] * 8, "address", "bool",
             *["uint256"] * 10, "bool", *["uint256"] * 3]


def terms_hash(values: Sequence[Any]) -> bytes:
    """keccak256(abi.encode(terms)) of a PactTerms ABI tuple (e.g. a PactCreated log's)."""
    return keccak(encode(TERMS_ABI, list(values)))


class Vote(BaseModel):
    """An EIP-712 Vote. The typehash fixes the field order and types."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: Annotated[int, Field(ge=0, le=U256)]
    deliverable_hash: bytes
    spec_hash: bytes
    score_bps: Bps
    evidence_hash: bytes
    round: Annotated[int, Field(ge=0, le=1)]
    deadline: Annotated[int, Field(ge=0, lt=2**64)]

    @field_validator("deliverable_hash", "spec_hash", "evidence_hash", mode="before")
    @classmethod
    def _hash(cls, v: Any) -> bytes:
        return _bytes32(v)

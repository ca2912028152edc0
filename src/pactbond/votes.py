"""Signed votes and vote batches as the escrow takes them.

A `SignedVote` is one member's EIP-712 `Vote` with its signature (`as_tuple()` is the contract's
SignedVote). A `VoteBatch` is many votes of one member, one round and one deadline; the member
signs `VoteBatch(votesRoot, round, deadline)` where votesRoot is the sorted-pair Merkle root of
the votes' struct hashes (pactbond.eip712.merkle_root). `SignedVoteBatch.items()` are the
contract's BatchItems and `signature_tuple()` its BatchSignature: the escrow rebuilds each
member's root from that member's items in call order, so a call carries whole batches.
"""

from __future__ import annotations

from typing import Annotated, Any

from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pactbond import eip712
from pactbond.models import Vote, _address

MAX_BATCH = 256  # items per settle_batch call (the contract's bound)
MAX_BATCH_SETTLES = 32  # jobs one settle_batch call may settle (the contract's bound, ADR 013)
MAX_CALL_VOTES = 4  # votes per settle or appeal call (the contract's bound, ADR 011)
MAX_PROOF = 10  # Merkle depth: 1,024 votes per member per batch


class SignedVote(BaseModel):
    """A vote and its member's signature."""

    model_config = ConfigDict(frozen=True)

    vote: Vote
    member: str
    signature: bytes

    @field_validator("member", mode="before")
    @classmethod
    def _member(cls, v: Any) -> str:
        return _address(v)

    def as_tuple(self) -> tuple[str, int, bytes, int, bytes]:
        """The contract's SignedVote (member, score_bps, evidence_hash, deadline, signature)."""
        v = self.vote
        return (self.member, v.score_bps, v.evidence_hash, v.deadline, self.signature)


class VoteBatch(BaseModel):
    """Votes of one member for one round, all with the batch's deadline."""

    model_config = ConfigDict(frozen=True)

    round: Annotated[int, Field(ge=0, le=1)]
    deadline: Annotated[int, Field(ge=0, lt=2**64)]
    votes: Annotated[list[Vote], Field(min_length=1, max_length=2**MAX_PROOF)]

    @model_validator(mode="after")
    def _coherent(self) -> VoteBatch:
        for v in self.votes:
            if v.round != self.round or v.deadline != self.deadline:
                raise ValueError("every vote of a batch has the batch's round and deadline")
        if len({v.job_id for v in self.votes}) != len(self.votes):
            raise ValueError("a batch holds at most one vote per job")
        return self

    def leaves(self) -> list[bytes]:
        return [eip712.vote_struct_hash(v) for v in self.votes]

    @property
    def root(self) -> bytes:
        return eip712.merkle_root(self.leaves())

    def proof(self, index: int) -> list[bytes]:
        return eip712.merkle_proof(self.leaves(), index)

    def struct_hash(self) -> bytes:
        return eip712.batch_struct_hash(self.root, self.round, self.deadline)

    def typed_data(self, chain_id: int, verifying_contract: str) -> dict[str, Any]:
        """The batch as an EIP-712 typed-data document (what the member's wallet signs)."""
        return {
            "types": {
                "EIP712Domain": eip712.DOMAIN_FIELDS,
                "VoteBatch": [
                    {"name": "votesRoot", "type": "bytes32"},
                    {"name": "round", "type": "uint8"},
                    {"name": "deadline", "type": "uint64"},
                ],
            },
            "primaryType": "VoteBatch",
            "domain": {
                "name": eip712.NAME, "version": eip712.VERSION, "chainId": chain_id,
                "verifyingContract": to_checksum_address(verifying_contract),
            },
            "message": {"votesRoot": self.root, "round": self.round, "deadline": self.deadline},
        }


class SignedVoteBatch(BaseModel):
    """A member's signed VoteBatch."""

    model_config = ConfigDict(frozen=True)

    batch: VoteBatch
    member: str
    signature: bytes

    @field_validator("member", mode="before")
    @classmethod
    def _member(cls, v: Any) -> str:
        return _address(v)

    def signature_tuple(self) -> tuple[str, bytes, int, bytes]:
        """The contract's BatchSignature (member, votes_root, deadline, signature)."""
        return (self.member, self.batch.root, self.batch.deadline, self.signature)

    def items(self) -> dict[int, tuple[int, str, int, bytes]]:
        """The contract's BatchItems by job id: (job_id, member, score, evidence), in the
        batch's order. The escrow rebuilds the root from all of them (no proofs), so a call
        carries every vote of the batch, in this order relative to each other."""
        return {
            v.job_id: (v.job_id, self.member, v.score_bps, v.evidence_hash)
            for v in self.batch.votes
        }

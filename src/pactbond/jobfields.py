"""A job's fields, rebuilt from the escrow's logs and checked against its stored word (ADR 011).

The escrow stores one word per job: the top 192 bits of
keccak256(abi.encode(job_id, fields, keccak256(abi.encode(pact terms)))) (ADR 011, 012)
and, in the low 64 bits, the current round's vote lanes of members 0-3 (16 bits each, score + 1).
Every job call passes the fields (`JobFields.as_tuple()`); a call with fields that do not hash
to the stored word reverts "escrow: stale job fields". The fields change only in serial
transitions, each of which logs what changed:

    JobOpened      every field (state OPEN)
    JobAccepted    state ACCEPTED, deadline = work_deadline
    JobSubmitted   state SUBMITTED, deadline = round-0 close = eval_deadline, deliverable
    JobUpdated     head, tail and r0 as logged (an early round-0 close; a challenge)
    JobSettled, JobCancelled, JobExpired: the terminal state, nothing else

`apply` folds one of these into the fields; anything else leaves them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

OPEN, ACCEPTED, SUBMITTED, VERDICT, CHALLENGED = 1, 2, 3, 4, 5
SETTLED, CANCELLED, EXPIRED_NO_DELIVERY, EXPIRED_NO_VERDICT = 6, 7, 8, 9
U40 = 2**40
U64 = 2**64
LANE = 2**16
CLEAR_MEMBERS = 4

#: the events that change a job's fields
EVENTS = ("JobOpened", "JobAccepted", "JobSubmitted", "JobUpdated", "JobSettled",
          "JobCancelled", "JobExpired")


def _b32(v: Any) -> bytes:
    if isinstance(v, str):
        v = bytes.fromhex(v.removeprefix("0x"))
    return bytes(v).rjust(32, b"\0")


def _addr(v: Any) -> int:
    return int(str(v), 16) if not isinstance(v, int) else v


@dataclass(frozen=True)
class JobFields:
    """The escrow's types.JobFields: the packed words, as the contract lays them out."""

    head: int
    tail: int
    money: int
    deliverable: bytes = b"\0" * 32
    r0: int = 0

    def as_tuple(self) -> tuple[int, int, int, bytes, int]:
        return (self.head, self.tail, self.money, self.deliverable, self.r0)

    def commitment(self, job_id: int, terms_hash: bytes) -> int:
        """The 192-bit commitment, in the position the stored word holds it: over the job id,
        the fields and the hash of the job's pact terms (`PactTerms.hash()`, ADR 012)."""
        h = keccak(encode(["uint256", "uint256", "uint256", "uint256", "bytes32", "uint256",
                           "bytes32"], [job_id, *self.as_tuple(), terms_hash]))
        return int.from_bytes(h, "big") >> 64 << 64

    def matches(self, job_id: int, word: int, terms_hash: bytes) -> bool:
        return word != 0 and word >> 64 == self.commitment(job_id, terms_hash) >> 64

    # -- decoded fields ---------------------------------------------------------------
    @property
    def buyer(self) -> str:
        return to_checksum_address(f"{self.head % 2**160:040x}")

    @property
    def state(self) -> int:
        return (self.head >> 160) % 256

    @property
    def by_agent(self) -> bool:
        return (self.head >> 168) % 256 == 1

    @property
    def pact_id(self) -> int:
        return (self.head >> 176) % 2**32

    @property
    def committee_version(self) -> int:
        return (self.head >> 208) % 2**24

    @property
    def appeal_version(self) -> int:
        return self.head >> 232

    @property
    def agent(self) -> str:
        return to_checksum_address(f"{self.tail % 2**160:040x}")

    @property
    def reserved(self) -> int:
        return (self.tail >> 160) % 2**16

    @property
    def deadline(self) -> int:
        return (self.tail >> 176) % U40

    @property
    def close_at(self) -> int:
        return self.tail >> 216

    @property
    def value(self) -> int:
        return self.money % 2**128

    @property
    def fee(self) -> int:
        return self.money >> 128

    def with_state(self, state: int) -> JobFields:
        head = self.head & ~(0xFF << 160) | (state << 160)
        return replace(self, head=head)

    def with_deadline(self, deadline: int, close_at: int | None = None) -> JobFields:
        tail = self.tail & ~((U40 - 1) << 176) | (deadline << 176)
        if close_at is not None:
            tail = tail % 2**216 | (close_at << 216)
        return replace(self, tail=tail)


def opened(args: Mapping[str, Any]) -> JobFields:
    head = (_addr(args["buyer"]) | (OPEN << 160) | (int(args["pact_id"]) << 176)
            | (int(args["committee_version"]) << 208) | (int(args["appeal_version"]) << 232))
    tail = (_addr(args["agent"]) | (int(args["reserved"]) << 160)
            | (int(args["accept_deadline"]) << 176))
    return JobFields(head=head, tail=tail, money=int(args["value"]) | (int(args["fee"]) << 128))


def apply(f: JobFields | None, name: str, args: Mapping[str, Any]) -> JobFields | None:
    """The fields after event `name` (with its decoded `args`) of the same job."""
    if name == "JobOpened":
        return opened(args)
    if f is None:
        return None
    if name == "JobAccepted":
        return f.with_state(ACCEPTED).with_deadline(int(args["work_deadline"]))
    if name == "JobSubmitted":
        d = int(args["eval_deadline"])
        return replace(f.with_state(SUBMITTED).with_deadline(d, d),
                       deliverable=_b32(args["deliverable_hash"]))
    if name == "JobUpdated":
        return replace(f, head=int(args["head"]), tail=int(args["tail"]), r0=int(args["r0"]))
    if name == "JobSettled":
        return f.with_state(SETTLED)
    if name == "JobCancelled":
        return f.with_state(CANCELLED)
    if name == "JobExpired":
        return f.with_state(EXPIRED_NO_DELIVERY if args["no_delivery"] else EXPIRED_NO_VERDICT)
    return f


def lanes_of(word: int, ext: int) -> int:
    """The current round's lanes of every member, from job_word's two words."""
    return word % U64 | (ext << 64)


def voters(lanes: int) -> int:
    return sum(1 << i for i in range(16) if (lanes >> (16 * i)) % LANE)


def scores(lanes: int) -> dict[int, int]:
    """Member index -> counted score."""
    return {i: (lanes >> (16 * i)) % LANE - 1 for i in range(16) if (lanes >> (16 * i)) % LANE}


def challenged(f: JobFields) -> bool:
    """Whether the round-0 lanes have moved into the fields (r0) and the clear lanes are round 1."""
    return f.state == CHALLENGED or f.r0 != 0


def round0_lanes(f: JobFields, lanes: int) -> int:
    """The round-0 lanes: the fields' r0 once challenged, else the current lanes."""
    return f.r0 if challenged(f) else lanes


@dataclass(frozen=True)
class FirstVote:
    """A job's first counted round-0 vote, as its VoteCounted log tells: Feedback's evidence
    and where to find the signed vote again (pactbond.client.Pactbond.evidence)."""

    block: int
    tx_hash: bytes
    log_index: int
    member: str
    score_bps: int
    evidence_hash: bytes


@dataclass
class JobRecord:
    """One job as folded from its logs: the fields after every transition (with the block it
    was logged in, chain order) and its first counted round-0 vote."""

    history: list[tuple[int, JobFields]]
    first_vote: FirstVote | None = None
    # its lanes hold round-0 votes that no VoteCounted log read shows: evidence taken as none
    no_first_vote: bool = False
    last: tuple[int, int] = (-1, -1)  # (block, log index) of the last log folded

    def fold(self, block: int, name: str, args: Mapping[str, Any], tx_hash: bytes = b"",
             log_index: int = 0) -> None:
        """Fold one log of this job (a fields event, or VoteCounted), in chain order; a log at
        or before the last one folded is skipped (ranges read twice fold once)."""
        if (block, log_index) <= self.last:
            return
        self.last = (block, log_index)
        if name == "VoteCounted":
            if int(args["round"]) == 0 and self.first_vote is None:
                self.first_vote = FirstVote(
                    block=block, tx_hash=tx_hash, log_index=log_index,
                    member=to_checksum_address(str(args["member"])),
                    score_bps=int(args["score_bps"]), evidence_hash=_b32(args["evidence_hash"]))
            return
        before = self.history[-1][1] if self.history else None
        after = apply(before, name, args)
        if after is not None and after != before:
            self.history.append((block, after))

    def at(self, block: int | None = None) -> JobFields | None:
        """The fields at the end of `block` (None: after every log folded)."""
        for b, f in reversed(self.history):
            if block is None or b <= block:
                return f
        return None

    def first_vote_at(self, block: int | None = None) -> FirstVote | None:
        v = self.first_vote
        return v if v is not None and (block is None or v.block <= block) else None

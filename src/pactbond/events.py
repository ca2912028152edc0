"""Escrow events as small typed models, read over a block range with a confirmation depth.

    for ev in pb.events(from_block, confirmations=2, names=["JobSettled", "Feedback"]):
        ...

Every model carries where it was logged (block, transaction, log index); its fields are the
event's, with the same names. Amounts are int (the asset's smallest unit), hashes bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from eth_typing import ChecksumAddress
from eth_utils.abi import event_abi_to_log_topic
from pydantic import BaseModel, ConfigDict
from web3 import Web3
from web3.contract.contract import Contract
from web3.exceptions import Web3RPCError
from web3.types import FilterParams, LogReceipt

from pactbond.models import PactTerms


class EscrowEvent(BaseModel):
    """Where an event was logged; subclasses add its fields."""

    model_config = ConfigDict(frozen=True)
    name: ClassVar[str] = ""

    block_number: int
    tx_hash: bytes
    log_index: int

    def __str__(self) -> str:
        fields = " ".join(
            f"{k}={'0x' + v.hex() if isinstance(v, bytes) else v}"
            for k, v in self
            if k not in ("block_number", "tx_hash", "log_index")
        )
        return f"{self.name}({fields}) at block {self.block_number}"


class PactCreated(EscrowEvent):
    pact_id: int
    owner: str
    terms_hash: bytes
    terms: PactTerms


class Staked(EscrowEvent):
    account: str
    asset: str
    amount: int
    evaluator: bool


class UnstakeRequested(EscrowEvent):
    account: str
    asset: str
    amount: int
    unlock_at: int


class StakeWithdrawn(EscrowEvent):
    account: str
    asset: str
    amount: int
    evaluator: bool


class Withdrawn(EscrowEvent):
    account: str
    asset: str
    to: str
    amount: int


class JobOpened(EscrowEvent):
    job_id: int
    pact_id: int
    buyer: str
    agent: str
    value: int
    fee: int
    committee_version: int
    appeal_version: int
    reserved: int
    accept_deadline: int


class JobAccepted(EscrowEvent):
    job_id: int
    agent: str
    bond: int
    work_deadline: int


class JobSubmitted(EscrowEvent):
    job_id: int
    deliverable_hash: bytes
    uri: str
    eval_deadline: int


class JobUpdated(EscrowEvent):
    """A serial transition no other event states fully: the job's new head, tail and r0
    (pactbond.jobfields)."""

    job_id: int
    head: int
    tail: int
    r0: int


class VoteCounted(EscrowEvent):
    job_id: int
    member: str
    round: int
    score_bps: int
    evidence_hash: bytes


class VerdictReached(EscrowEvent):
    job_id: int
    votes: int


class RoundClosed(EscrowEvent):
    job_id: int
    score_bps: int
    challenge_deadline: int


class JobChallenged(EscrowEvent):
    job_id: int
    challenger: str
    score_bps: int
    appeal_deadline: int


class AppealResolved(EscrowEvent):
    job_id: int
    quorum: bool
    overturned: bool
    challenger_won: bool
    score_bps: int


class EvaluatorPenalized(EscrowEvent):
    job_id: int
    member: str
    amount: int
    to: str  # the zero address: burned


class JobSettled(EscrowEvent):
    job_id: int
    score_bps: int
    to_agent: int
    to_buyer: int  # the escrow's rest and the fee remainder (the slash share is Credited apart)
    slashed: int


class JobExpired(EscrowEvent):
    job_id: int
    no_delivery: bool
    to_agent: int
    slashed: int


class JobCancelled(EscrowEvent):
    job_id: int
    by: str


class Feedback(EscrowEvent):
    agent: str
    job_id: int
    pact_id: int
    buyer: str
    score_bps: int
    evidence_hash: bytes


class Credited(EscrowEvent):
    account: str
    asset: str
    job_id: int
    amount: int


class Burned(EscrowEvent):
    asset: str
    job_id: int
    amount: int


MODELS: dict[str, type[EscrowEvent]] = {
    cls.__name__: cls
    for cls in (
        PactCreated, Staked, UnstakeRequested, StakeWithdrawn, Withdrawn, JobOpened,
        JobAccepted, JobSubmitted, JobUpdated, VoteCounted, VerdictReached, RoundClosed, JobChallenged,
        AppealResolved, EvaluatorPenalized, JobSettled, JobExpired, JobCancelled, Feedback,
        Credited, Burned,
    )
}
for _n, _c in MODELS.items():
    _c.name = _n


def _value(v: Any) -> Any:
    if isinstance(v, bytes | bytearray):
        return bytes(v)
    return v


def decode(contract: Contract, log: LogReceipt, topics: Mapping[bytes, str]) -> EscrowEvent | None:
    """The typed event of one escrow log (None for a log no model covers)."""
    if not log["topics"]:
        return None
    name = topics.get(bytes(log["topics"][0]))
    if name is None:
        return None
    ev = contract.events[name]().process_log(log)
    args = {k: _value(v) for k, v in ev["args"].items()}
    if name == "PactCreated":
        t = args["terms"]
        args["terms"] = PactTerms(
            **(dict(t) if isinstance(t, Mapping) else dict(zip(PactTerms.model_fields, t,
                                                                strict=True)))
        )
    return MODELS[name](
        block_number=ev["blockNumber"], tx_hash=bytes(ev["transactionHash"]),
        log_index=ev["logIndex"], **args,
    )


def topic_map(contract: Contract) -> dict[bytes, str]:
    """topic0 -> event name for every modelled event of the contract's ABI."""
    return {
        bytes(event_abi_to_log_topic(e)): str(e.get("name"))  # type: ignore[arg-type]
        for e in contract.abi
        if e.get("type") == "event" and e.get("name") in MODELS
    }


def logs_in(w3: Web3, address: ChecksumAddress, topics: list[Any], first: int, last: int,
            chunk: int = 5_000) -> Iterator[LogReceipt]:
    """The logs of `address` matching `topics` in blocks first..last (inclusive), in chain
    order, asked for `chunk` blocks at a time. Providers cap a log query's range or result
    count (often far below 5,000 blocks) with an RPC error: a refused range is halved and asked
    again, down to one block, and the chunk grows back after each answer, so a capped provider
    is slower, not unusable."""
    start, size = first, chunk
    while start <= last:
        end = min(start + size - 1, last)
        params: FilterParams = {"address": address, "fromBlock": start, "toBlock": end,
                                "topics": topics}
        try:
            logs = w3.eth.get_logs(params)
        except Web3RPCError:
            if end == start:
                raise
            size = max(1, (end - start + 1) // 2)
            continue
        yield from logs
        start = end + 1
        size = min(chunk, size * 2)


def iter_events(
    w3: Web3,
    contract: Contract,
    first: int,
    last: int,
    names: Iterable[str] | None = None,
    chunk: int = 5_000,
) -> Iterator[EscrowEvent]:
    """Typed events of `contract` in blocks first..last (inclusive), in chain order, fetched in
    chunks of `chunk` blocks (halved when a provider refuses a range: `logs_in`)."""
    topics = topic_map(contract)
    wanted = set(names) if names is not None else set(MODELS)
    unknown = wanted - set(MODELS)
    if unknown:
        raise ValueError(f"no escrow event named {sorted(unknown)}; known: {sorted(MODELS)}")
    topic0 = ["0x" + t.hex() for t, n in topics.items() if n in wanted]
    for log in logs_in(w3, contract.address, [topic0], first, last, chunk):
        ev = decode(contract, log, topics)
        if ev is not None:
            yield ev

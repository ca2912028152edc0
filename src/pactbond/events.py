"""Escrow events as small typed models, read over a block range with a confirmation depth.

    for ev in pb.events(from_block, confirmations=2, names=["JobSettled", "Feedback"]):
        ...

Every model carries where it was logged (block, transaction, log index); its fields are the
event's, with the same names. Amounts are int (the asset's smallest unit), hashes bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, cast

from eth_abi.abi import decode as abi_decode
from eth_typing import ChecksumAddress
from eth_utils.abi import collapse_if_tuple, event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from pydantic import BaseModel, ConfigDict
from web3 import HTTPProvider, Web3
from web3.contract.contract import Contract
from web3.exceptions import Web3RPCError
from web3.types import FilterParams, LogReceipt, RPCEndpoint

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
        JobAccepted, JobSubmitted, JobUpdated, VoteCounted, VerdictReached, RoundClosed,
        JobChallenged, AppealResolved, EvaluatorPenalized, JobSettled, JobExpired, JobCancelled,
        Feedback, Credited, Burned,
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


RawDecoder = Callable[[LogReceipt], "tuple[str, dict[str, Any]] | None"]


def raw_decoder(abi: Sequence[Mapping[str, Any]], names: Iterable[str]) -> RawDecoder:
    """A decoder of the logs of events `names` of `abi` into (name, args) with eth-abi alone
    (web3's process_log costs ~50 times more CPU a log: folding every job's logs goes through
    this). Addresses come back checksummed, hashes as bytes; other logs decode to None."""
    wanted = set(names)
    table: dict[bytes, tuple[str, list[tuple[str, str]], list[str], list[str]]] = {}
    for e in abi:
        if e.get("type") != "event" or e.get("name") not in wanted:
            continue
        ins = list(e["inputs"])
        indexed = [(str(i["name"]), collapse_if_tuple(dict(i))) for i in ins if i["indexed"]]
        rest = [i for i in ins if not i["indexed"]]
        table[bytes(event_abi_to_log_topic(dict(e)))] = (  # type: ignore[arg-type]
            str(e["name"]), indexed, [str(i["name"]) for i in rest],
            [collapse_if_tuple(dict(i)) for i in rest])

    def _norm(typ: str, v: Any) -> Any:
        if typ == "address":
            return to_checksum_address(v)
        return bytes(v) if isinstance(v, bytes | bytearray) else v

    def decode_raw(log: LogReceipt) -> tuple[str, dict[str, Any]] | None:
        topics = log["topics"]
        if not topics:
            return None
        got = table.get(bytes(topics[0]))
        if got is None:
            return None
        name, indexed, names_, types = got
        args: dict[str, Any] = {}
        for (n, t), topic in zip(indexed, topics[1:], strict=True):
            (args[n],) = abi_decode([t], bytes(topic))
            args[n] = _norm(t, args[n])
        for n, t, v in zip(names_, types, abi_decode(types, bytes(log["data"])), strict=True):
            args[n] = _norm(t, v)
        return name, args

    return decode_raw


def logs_in(w3: Web3, address: ChecksumAddress, topics: list[Any], first: int, last: int,
            chunk: int = 5_000, lean: bool = False) -> Iterator[LogReceipt]:
    """The logs of `address` matching `topics` in blocks first..last (inclusive), in chain
    order, asked for `chunk` blocks at a time. Providers cap a log query's range or result
    count (often far below 5,000 blocks) with an RPC error: a refused range is halved and asked
    again, down to one block, and the chunk grows back after each answer, so a capped provider
    is slower, not unusable. `lean`: over HTTP, asked straight of the provider, each log with
    only topics, data, blockNumber, transactionHash, logIndex and removed, as web3 types them
    (web3's request pipeline and result formatters cost twice the node's own time on a local
    chain: raw_decoder reads these logs)."""
    start, size = first, chunk
    while start <= last:
        end = min(start + size - 1, last)
        params: FilterParams = {"address": address, "fromBlock": start, "toBlock": end,
                                "topics": topics}
        try:
            logs = _lean_logs(w3, params) if lean else w3.eth.get_logs(params)
        except Web3RPCError:
            if end == start:
                raise
            size = max(1, (end - start + 1) // 2)
            continue
        yield from logs
        start = end + 1
        size = min(chunk, size * 2)


def _lean_logs(w3: Web3, params: FilterParams) -> list[LogReceipt]:
    if not isinstance(w3.provider, HTTPProvider):
        return list(w3.eth.get_logs(params))
    raw = {**params, "fromBlock": hex(int(params["fromBlock"])),
           "toBlock": hex(int(params["toBlock"]))}
    resp = w3.provider.make_request(RPCEndpoint("eth_getLogs"), [raw])
    if "error" in resp:
        raise Web3RPCError(f"eth_getLogs: {resp['error']}")
    return [cast(LogReceipt, {
        "topics": [HexBytes(t) for t in lg["topics"]], "data": HexBytes(lg["data"]),
        "blockNumber": int(lg["blockNumber"], 16),
        "transactionHash": HexBytes(lg["transactionHash"]),
        "logIndex": int(lg["logIndex"], 16), "removed": bool(lg.get("removed", False)),
    }) for lg in resp["result"]]


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

"""The pactbond client: typed reads and every contract call, with checks before sending.

    from pactbond import Pactbond, KeyWallet
    pb = Pactbond.connect("http://127.0.0.1:8545", "deployments/local.json", wallet)

Each call's docstring names the role that makes it. Every check made before sending raises the
same typed error (pactbond.errors) that the contract's revert maps to, with the contract's
reason and a hint saying what to do; a revert that still happens maps the same way, and an
unknown one surfaces with its raw reason. Amounts are int in the asset's smallest unit: floats,
Decimals and strings are refused. Time checks use the chain's clock (the next block's
timestamp), never the local one.

The escrow stores one word per job (ADR 011): `job` rebuilds the job's fields from the escrow's
logs, checks them against that word and keeps them, and every job call passes them; `evidence`
finds the signed round-0 vote that finalize and resolve re-prove for Feedback.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlparse

import requests
from eth_account.messages import encode_typed_data
from eth_typing import ChecksumAddress
from eth_utils.abi import collapse_if_tuple
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from pydantic import BaseModel, ConfigDict, Field
from web3 import Web3
from web3.contract.contract import Contract, ContractFunction
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception
from web3.logs import DISCARD
from web3.types import BlockIdentifier, TxParams, TxReceipt, Wei

from pactbond import eip712, jobfields, money
from pactbond.calls import Call, LeanContract
from pactbond.deploy import Manifest, abi, code_hash
from pactbond.errors import (
    ConnectionMismatchError,
    ContractError,
    InvalidInputError,
    InvalidSignatureError,
    NodeError,
    PactbondError,
    TxPendingError,
    UnknownObjectError,
    WalletError,
    error_for_reason,
)
from pactbond.events import EscrowEvent, iter_events, logs_in, raw_decoder, topic_map
from pactbond.jobfields import FirstVote, JobFields, JobRecord
from pactbond.models import BPS, ZERO_ADDRESS, ZERO_HASH, PactTerms, Vote
from pactbond.votes import (
    MAX_BATCH,
    MAX_BATCH_SETTLES,
    MAX_CALL_VOTES,
    SignedVote,
    SignedVoteBatch,
    VoteBatch,
)
from pactbond.wallets import Wallet

log = logging.getLogger("pactbond.client")

U128 = 2**128
U256 = 2**256
MAX_MEMBERS = 16
MAX_SIG_LEN = 1040


class JobState(IntEnum):
    OPEN = 1
    ACCEPTED = 2
    SUBMITTED = 3
    VERDICT = 4
    CHALLENGED = 5
    SETTLED = 6
    CANCELLED = 7
    EXPIRED_NO_DELIVERY = 8
    EXPIRED_NO_VERDICT = 9

    @property
    def terminal(self) -> bool:
        return self >= JobState.SETTLED


class Job(BaseModel):
    """A job as its logs and stored word give it (ADR 011), decoded. VERDICT is derived as the
    contract derives it: stored SUBMITTED and counted round-0 votes >= the committee version's
    threshold. `fields` is what every job call passes (`fields.as_tuple()`); it is left out of
    model_dump (what the CLI prints)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    id: int
    buyer: str
    agent: str
    pact_id: int
    state: JobState
    challenged_by_agent: bool
    committee_version: int
    appeal_version: int
    reserved: int  # bitmap by committee member index
    deadline: int  # OPEN: accept; ACCEPTED: work; SUBMITTED/VERDICT: evaluation; CHALLENGED: appeal
    round0_close: int
    value: int
    fee: int
    deliverable_hash: bytes
    evidence_hash: bytes  # the first counted round-0 vote's (zero before any)
    round0: dict[int, int]  # member index -> score
    round1: dict[int, int]
    fields: JobFields = Field(exclude=True)

    @property
    def reserved_count(self) -> int:
        return bin(self.reserved).count("1")


class AgentStake(BaseModel):
    free: int
    locked: int


class EvaluatorStake(BaseModel):
    stake: int  # pending withdrawal included
    reserved: int
    pending: int
    unlock_at: int

    @property
    def unlocked(self) -> int:
        """Stake not pending withdrawal (what the bond and reservations count against)."""
        return self.stake - self.pending


class Roster(BaseModel):
    version_id: int
    committee_id: int
    threshold: int
    bond: int
    penalty: int
    members: list[str]
    accepted: list[str]
    active: list[str]

    def index(self, member: str) -> int | None:
        m = to_checksum_address(member)
        return self.members.index(m) if m in self.members else None


class Committee(BaseModel):
    id: int
    admin: str
    asset: str
    rotation_delay: int
    current_version: int
    pending_version: int
    pending_effective_at: int


class Exposure(BaseModel):
    open_value: int
    bonus: int
    cap: int


class Counters(BaseModel):
    settled: int
    passed: int
    partial: int
    failed: int
    no_delivery: int
    no_verdict: int
    challenges: int
    lost_or_overturned: int  # agent: challenges it lost; pact: overturned verdicts
    released: int
    slashed: int


class JobLogsError(NodeError):
    """The node's logs do not rebuild a job's stored word (logs pruned or capped, or a reorg
    while they were read): the job's fields cannot be known, so no call on it can be made.
    Reading again may succeed."""


#: the contract's Evidence tuple (member, score_bps, evidence_hash, deadline, batch, proof,
#: signature); member zero: Feedback carries no evidence
Evidence = tuple[str, int, bytes, int, bool, list[bytes], bytes]
NO_EVIDENCE: Evidence = (ZERO_ADDRESS, 0, ZERO_HASH, 0, False, [], b"")
#: the logs a job's fields and first round-0 vote are rebuilt from
JOB_LOGS = (*jobfields.EVENTS, "VoteCounted")


@dataclass
class _JobBook:
    """What the logs told about jobs (shared by a client and its with_wallet copies): every
    job's record folded from the escrow's logs up to block `scanned`, the thresholds and
    members of committee versions (immutable), and evidence found per first vote."""

    scanned: int
    jobs: dict[int, JobRecord]
    versions: dict[int, tuple[int, list[str]]]
    evidence: dict[int, tuple[FirstVote, Evidence]]
    lock: threading.RLock


@dataclass(frozen=True)
class AppealPreview:
    """What resolving a challenge with given round-1 scores does."""

    appeal: money.Appeal
    penalized_members: list[str]  # round-0 voters whose reservation goes to the favoured party
    penalty: int  # per penalized member
    settlement: money.Settlement  # the job's split at the final score


def _counters(counts: int, money_word: int) -> Counters:
    c = [(counts >> (32 * i)) % 2**32 for i in range(8)]
    return Counters(
        settled=c[0], passed=c[1], partial=c[2], failed=c[3], no_delivery=c[4],
        no_verdict=c[5], challenges=c[6], lost_or_overturned=c[7],
        released=money_word % U128, slashed=money_word >> 128,
    )


@cache
def merged_escrow_abi() -> list[dict[str, Any]]:
    """The escrow's ABI plus the facets' functions its fallback runs (one address for all)."""
    def key(e: dict[str, Any]) -> tuple[Any, ...]:
        # by signature: a default argument makes two overloads of one name
        return (e.get("type"), e.get("name"),
                tuple(collapse_if_tuple(i) for i in e.get("inputs", [])))

    out = list(abi("PactEscrow"))
    seen = {key(e) for e in out}
    for facet in ("PactEscrowAppeals", "PactEscrowBatch"):
        for e in abi(facet):
            if e.get("type") in ("function", "event") and key(e) not in seen:
                out.append(e)
                seen.add(key(e))
    return out


# What a revert raises: ContractLogicError on a node (anvil, geth...), and also TransactionFailed
# on web3's in-process EthereumTesterProvider. eth_tester costs ~0.4 s to import, so it is only
# added once something else has loaded it (a client built on that provider: see _note_tester).
REVERTS: tuple[type[Exception], ...] = (ContractLogicError,)


def _note_tester() -> None:
    global REVERTS
    if len(REVERTS) == 1 and "eth_tester" in sys.modules:
        from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped]

        REVERTS = (ContractLogicError, TransactionFailed)


def _topic(contract: Contract, name: str) -> str:
    return next("0x" + t.hex() for t, n in topic_map(contract).items() if n == name)


def revert_reason(err: Exception) -> str | None:
    """The revert string of a failed call, from web3's error, else None."""
    msg = getattr(err, "message", None) or (err.args[0] if err.args else "")
    if not isinstance(msg, str):
        return None
    for prefix in ("execution reverted: ", "revert: "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg or None


def settles_now(j: Job, r: Roster, t: PactTerms, seen: set[tuple[int, int]]) -> bool:
    """Whether round-0 votes (`seen`: (job id, member index) pairs, counted) settle job `j` in
    their call: a zero challenge window, the threshold reached, and no active reserved member
    left without a vote (the escrow's close rule)."""
    if t.challenge_window != 0:
        return False
    voters = set(j.round0) | {i for jid, i in seen if jid == j.id}
    silent = [i for i, m in enumerate(r.members)
              if j.reserved >> i & 1 and m in r.active and i not in voters]
    return len(voters) >= r.threshold and not silent


def _refuse(reason: str, hint: str = "") -> NoReturn:
    """Raise the typed error the contract's revert `reason` maps to."""
    raise error_for_reason(reason, hint)


def _int(x: Any, name: str) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise InvalidInputError(
            f"{name} must be an int (amounts in the asset's smallest unit), got "
            f"{type(x).__name__} {x!r}: convert exactly first, never through float"
        )
    return x


def _amount(x: Any, name: str, zero_reason: str) -> int:
    """A positive int amount below 2**256; zero or less raises what the contract's zero check
    maps to."""
    if _int(x, name) <= 0:
        _refuse(zero_reason, f"{name} must be positive, got {x}")
    if x >= U256:
        raise InvalidInputError(f"{name} {x} does not fit a uint256")
    return int(x)


def _score(x: Any) -> int:
    if not 0 <= _int(x, "score") <= BPS:
        raise InvalidInputError(f"a score is 0..10000 basis points, got {x}")
    return int(x)


def _vote_score(x: Any) -> int:
    """A vote's score: above 10000 is what the contract refuses ("vote: score above 10000")."""
    if _int(x, "score") > BPS:
        _refuse("vote: score above 10000", f"got {x}")
    return _score(x)


def _addr(x: Any, name: str) -> ChecksumAddress:
    try:
        return to_checksum_address(x)
    except Exception:
        raise InvalidInputError(f"{name} is not an address: {x!r}") from None


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _call_order(orders: Sequence[Sequence[int]]) -> list[int]:
    """Job ids in an order that keeps each list's own order (the first seen first where
    free): a settle_batch call rebuilds each member's batch root from its votes in call order,
    and a job's votes sit together. Two batches ordering common jobs differently have none."""
    first: dict[int, int] = {}
    after: dict[int, set[int]] = {}
    for o in orders:
        for jid in o:
            first.setdefault(jid, len(first))
            after.setdefault(jid, set())
        for a, b in itertools.pairwise(o):
            after[a].add(b)
    before = dict.fromkeys(first, 0)
    for nxt in after.values():
        for b in nxt:
            before[b] += 1
    ready = [(first[j], j) for j, n in before.items() if n == 0]
    heapq.heapify(ready)
    out: list[int] = []
    while ready:
        _, j = heapq.heappop(ready)
        out.append(j)
        for b in after[j]:
            before[b] -= 1
            if before[b] == 0:
                heapq.heappush(ready, (first[b], b))
    if len(out) < len(first):
        raise InvalidInputError(
            "the batches order their common jobs differently, and a call keeps each member's "
            "order: sign the batches with the jobs in one order"
        )
    return out


class Pactbond:
    """A connection to one pactbond deployment, optionally with a wallet to send from."""

    def __init__(
        self, w3: Web3, manifest: Manifest, wallet: Wallet | None = None, timeout: float = 120.0
    ) -> None:
        _note_tester()
        self.w3 = w3
        self.manifest = manifest
        self.wallet = wallet
        self.timeout = timeout
        self.registry: Contract = w3.eth.contract(
            address=to_checksum_address(manifest.address("PactRegistry")), abi=abi("PactRegistry")
        )
        self.escrow: Contract = w3.eth.contract(
            address=to_checksum_address(manifest.address("PactEscrow")), abi=merged_escrow_abi()
        )
        self._esc = LeanContract(w3, self.escrow.address, merged_escrow_abi())
        self._reg = LeanContract(w3, self.registry.address, abi("PactRegistry"))
        self._tokens: dict[str, LeanContract] = {}
        self._terms: dict[int, PactTerms] = {}
        self._terms_hashes: dict[int, bytes] = {}  # pact id -> PactTerms.hash() (ADR 012)
        self._decimals: dict[str, int] = {}
        self._book = _JobBook(scanned=manifest.block - 1, jobs={}, versions={}, evidence={},
                              lock=threading.RLock())
        self._decode_log = raw_decoder(merged_escrow_abi(), JOB_LOGS)
        self._log_topics = [_topic(self.escrow, n) for n in JOB_LOGS]

    def __repr__(self) -> str:
        who = self.wallet.address if self.wallet is not None else "read-only"
        return f"Pactbond(chain {self.chain_id}, escrow {self.escrow.address}, {who})"

    # -- connection ------------------------------------------------------------------------
    @classmethod
    def connect(
        cls,
        rpc_url: str,
        manifest: Manifest | str | Path,
        wallet: Wallet | None = None,
        timeout: float = 120.0,
        retries: bool = True,
    ) -> Pactbond:
        """Connect over HTTP(S) or WebSocket and refuse a node whose chain id or contract code
        differs from the manifest's."""
        m = manifest if isinstance(manifest, Manifest) else Manifest.load(Path(manifest))
        # the chain id is checked once here; web3 would otherwise ask for it on every call
        cache: dict[str, Any] = {"cache_allowed_requests": True,
                                 "cacheable_requests": {"eth_chainId"}}
        if rpc_url.startswith(("ws://", "wss://")):
            provider: Any = Web3.LegacyWebSocketProvider(rpc_url, **cache)
        elif rpc_url.startswith(("http://", "https://")):
            session = requests.Session()
            # a loopback node needs no proxy: skip reading the proxy environment per request
            session.trust_env = urlparse(rpc_url).hostname not in ("127.0.0.1", "localhost", "::1")
            # web3 retries a failed request 5 times with backoff (sends included): a 1 s timeout
            # becomes ~7 s a call; a caller with its own retry loop (the oracle) asks for none
            extra: dict[str, Any] = {} if retries else {"exception_retry_configuration": None}
            provider = Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout},
                                         session=session, **cache, **extra)
        else:
            raise InvalidInputError(f"RPC URL must start with http(s):// or ws(s)://: {rpc_url!r}")
        w3 = Web3(provider)
        # addresses are checksummed here, never ENS names: skip web3's recursive name lookup
        w3.middleware_onion.remove("ens_name_to_address")
        client = cls(w3, m, wallet, timeout)
        client.verify()
        return client

    def with_wallet(self, wallet: Wallet) -> Pactbond:
        """The same connection sending from another wallet."""
        other = type(self)(self.w3, self.manifest, wallet, self.timeout)
        other._terms = self._terms
        other._terms_hashes = self._terms_hashes
        other._decimals = self._decimals
        other._book = self._book
        return other

    def verify(self) -> None:
        """Check the chain id and each contract's code hash against the manifest."""
        try:
            chain_id = self.w3.eth.chain_id
        except Exception as e:
            raise ConnectionMismatchError(f"cannot reach the node: {type(e).__name__}") from None
        if chain_id != self.manifest.chain_id:
            raise ConnectionMismatchError(
                f"node is chain {chain_id}, the manifest is for chain {self.manifest.chain_id}"
            )
        for name, rec in self.manifest.contracts.items():
            got = code_hash(self.w3, rec.address)
            if got != rec.code_hash:
                raise ConnectionMismatchError(
                    f"{name} at {rec.address} has code hash {got}, the manifest says "
                    f"{rec.code_hash}: wrong deployment or network"
                )

    @property
    def chain_id(self) -> int:
        """The manifest's (and, once verified, the node's) chain id."""
        return self.manifest.chain_id

    @property
    def address(self) -> str:
        """The wallet's address."""
        return to_checksum_address(self._sender().address)

    def now(self) -> int:
        """The chain's time (the latest block's timestamp): deadlines use it, never the clock."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def next_block_time(self) -> int:
        """The timestamp the next block will have, as far as the node tells (its pending
        block), and at least the latest block's + 1: what time checks before sending use."""
        latest = self.now()
        try:
            pending = int(self.w3.eth.get_block("pending")["timestamp"])
        except Exception:
            pending = 0
        return max(latest + 1, pending)

    def _sender(self) -> Wallet:
        if self.wallet is None:
            raise WalletError("this call sends a transaction: connect with a wallet")
        return self.wallet

    # -- sending ---------------------------------------------------------------------------
    def transact(self, fn: Call | ContractFunction, value: int = 0) -> TxReceipt:
        """Simulate (estimate gas), sign, send and wait; a revert raises its typed error.
        `fn` is an encoded Call or a web3 ContractFunction."""
        wallet = self._sender()
        sender = to_checksum_address(wallet.address)
        if not isinstance(fn, Call):
            fn = Call(to_checksum_address(fn.address), bytes(HexBytes(
                fn._encode_transaction_data())), fn.fn_name)
        call: TxParams = {"from": sender, "to": to_checksum_address(fn.to), "data": fn.data,
                          "value": Wei(value)}
        try:
            gas = self.w3.eth.estimate_gas(call)  # a revert surfaces here, before sending
            tx: dict[str, Any] = {
                **call, "chainId": self.chain_id,
                "nonce": self.w3.eth.get_transaction_count(sender, "pending"),
                # headroom: state (and so gas) may move between estimate and inclusion
                "gas": gas * 6 // 5, **self._fees(),
            }
        except REVERTS as e:
            raise self._error(e) from None
        except (Web3Exception, ValueError) as e:
            raise self._node_error(e) from None
        log.debug("sending %s from %s nonce %s gas %s value %s", fn.name, sender, tx["nonce"],
                  tx["gas"], value)
        raw = wallet.sign_transaction(tx)
        tx_hash = bytes(Web3.keccak(raw))
        try:
            self.w3.eth.send_raw_transaction(raw)
        except (Web3Exception, ValueError, requests.RequestException, OSError) as e:
            # web3 resends on a timeout or a 5xx: the node may hold (or have mined) the first
            # copy and answer the retry "already known" / "nonce too low". Ours if it knows it.
            try:
                status = self.tx_status(tx_hash)
            except (Web3Exception, ValueError, requests.RequestException, OSError):
                raise NodeError(f"the node could not be reached ({type(e).__name__}): "
                                f"transaction {_hex(tx_hash)} (nonce {tx['nonce']}) may or may "
                                "not have been sent; check it before sending again") from None
            if status == "unknown":
                if isinstance(e, (requests.RequestException, OSError)):
                    raise NodeError(f"the node could not be reached: {type(e).__name__}; "
                                    f"transaction {_hex(tx_hash)} was not sent") from None
                raise self._node_error(e) from None
        try:
            receipt = self._receipt(tx_hash, int(tx["nonce"]))
        except (requests.RequestException, OSError) as e:
            # sent, then the node went away: it may still be mined
            raise TxPendingError(
                f"lost the node ({type(e).__name__}) while waiting for transaction "
                f"{_hex(tx_hash)} (nonce {tx['nonce']}); it may still be mined: wait for it "
                "rather than sending the call again", tx_hash, int(tx["nonce"])) from None
        except (Web3Exception, ValueError) as e:
            raise self._node_error(e) from None
        log.info("%s %s in block %s: status %s, gas %s", fn.name, _hex(bytes(tx_hash)),
                 receipt["blockNumber"], receipt["status"], receipt["gasUsed"])
        if receipt["status"] != 1:
            try:  # replayed on the state before its block, with its gas (the end of the
                # block may no longer refuse it)
                self.w3.eth.call({**call, "gas": tx["gas"]}, receipt["blockNumber"] - 1)
            except REVERTS as e:
                raise self._error(e) from None
            if receipt["gasUsed"] >= tx["gas"]:
                raise ContractError("out of gas", f"the transaction used its whole {tx['gas']} gas")
            raise ContractError("transaction reverted without a reason")
        return receipt

    def _fees(self) -> dict[str, int]:
        """EIP-1559 fees as web3 sets them (priority fee + 2 x base fee), or a legacy price."""
        base = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base is None:
            return {"gasPrice": int(self.w3.eth.gas_price)}
        tip = int(self.w3.eth.max_priority_fee)
        return {"maxFeePerGas": tip + 2 * int(base), "maxPriorityFeePerGas": tip}

    def _receipt(self, tx_hash: bytes, nonce: int) -> TxReceipt:
        """Wait for a receipt, polling fast first (a local node mines at once), then backing
        off to 1 s. Past the timeout: TxPendingError (it may still be mined)."""
        deadline = time.monotonic() + self.timeout
        pause = 0.005
        while True:
            try:
                return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                if time.monotonic() > deadline:
                    raise TxPendingError(
                        f"transaction {_hex(bytes(tx_hash))} (nonce {nonce}) not mined within "
                        f"{self.timeout:g} s; it may still be: wait for it rather than sending "
                        "the call again", bytes(tx_hash), nonce) from None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def tx_status(self, tx_hash: bytes) -> str:
        """"mined" (a receipt), "pending" (the node holds it) or "unknown" (never seen, or
        dropped)."""
        try:
            self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            return "mined"
        except TransactionNotFound:
            pass
        try:
            self.w3.eth.get_transaction(HexBytes(tx_hash))
            return "pending"
        except TransactionNotFound:
            return "unknown"

    @staticmethod
    def _error(e: Exception) -> PactbondError:
        """A contract's refusal as its typed error. web3 also takes some of a node's own error
        replies for reverts (a provider's rate limit, "header not found": data null or an
        object): those are NodeError, not a contract's verdict."""
        msg = getattr(e, "message", None) or (e.args[0] if e.args else "")
        data = getattr(e, "data", None)
        if isinstance(data, dict) or (isinstance(msg, str) and msg and not msg.startswith(
                ("execution reverted", "revert"))):
            # revert data is hex or absent; an object is a provider's note (web3 still
            # prefixes "execution reverted: " to its message)
            return NodeError(f"the node answered with an error, not a revert: "
                             f"{(revert_reason(e) or str(msg))[:200]}")
        reason = revert_reason(e)
        return error_for_reason(reason) if reason else ContractError(str(e))

    @staticmethod
    def _node_error(e: Exception) -> PactbondError:
        msg = revert_reason(e) or type(e).__name__
        if "insufficient funds" in msg.lower():
            return error_for_reason("insufficient funds", msg)
        return NodeError(f"the node refused the transaction: {msg}")

    def _events(self, receipt: TxReceipt, name: str) -> list[Any]:
        return list(getattr(self.escrow.events, name)().process_receipt(receipt, errors=DISCARD))

    def _read(self, contract: LeanContract, name: str, *args: Any,
              block: BlockIdentifier = "latest") -> Any:
        """A view call (at `block`) whose revert raises its typed error."""
        try:
            return contract.read(name, *args, block=block)
        except REVERTS as e:
            raise self._error(e) from None

    # -- reads -----------------------------------------------------------------------------
    def pact(self, pact_id: int) -> PactTerms:
        """A pact's terms (immutable; read once from its PactCreated event, then cached)."""
        if pact_id in self._terms:
            return self._terms[pact_id]
        log = None
        if 0 <= _int(pact_id, "pact_id") < U256:
            # by its indexed id, through the range-halving reader (capped providers)
            topics = [_topic(self.escrow, "PactCreated"), "0x" + pact_id.to_bytes(32, "big").hex()]
            log = next(iter(logs_in(self.w3, self.escrow.address, topics, self.manifest.block,
                                    int(self.w3.eth.block_number))), None)
        if log is None:
            raise UnknownObjectError(
                "escrow: unknown pact", f"no pact {pact_id} on this deployment"
            )
        t = self.escrow.events.PactCreated().process_log(log)["args"]["terms"]
        fields = (
            dict(t) if isinstance(t, Mapping) else dict(zip(PactTerms.model_fields, t, strict=True))
        )
        terms = PactTerms(**fields)
        self._terms[pact_id] = terms
        return terms

    def _terms_hash(self, pact_id: int) -> bytes:
        """The hash of a pact's terms, which its jobs' words commit to (immutable: hashed once)."""
        h = self._terms_hashes.get(pact_id)
        if h is None:
            h = self._terms_hashes[pact_id] = self.pact(pact_id).hash()
        return h

    def job(self, job_id: int, block: BlockIdentifier = "latest") -> Job:
        """Reads: a job as of `block` (state with VERDICT derived, deadlines, money, votes by
        member index, the fields every job call passes). The fields come from the escrow's logs
        up to that block, checked against the stored word (`job_word`); what the logs told is
        kept, so a read whose cached fields still match costs one eth_call. Raises
        UnknownObjectError for a job never opened (by that block), JobLogsError when the logs
        do not rebuild the stored word."""
        if not 0 <= _int(job_id, "job_id") < U256:
            raise InvalidInputError(f"job ids are uint256, got {job_id}")
        at = self._block_number(block)
        word, ext = self._job_word(job_id, "latest" if at is None else at)
        with self._book.lock:
            got = self._known(job_id, word, ext, at)
            if isinstance(got, str):
                word, ext, f, first = self._refresh(job_id, at, word, ext, got)
            else:
                f, first = got
        return self._job_of(job_id, f, word, ext, first)

    def _block_number(self, block: BlockIdentifier) -> int | None:
        """`block` as a number (None: "latest", read as such: one call fewer)."""
        if block == "latest":
            return None
        if isinstance(block, int) and not isinstance(block, bool):
            return block
        return int(self.w3.eth.get_block(block)["number"])

    def _job_word(self, job_id: int, block: BlockIdentifier) -> tuple[int, int]:
        word, ext = self._read(self._esc, "job_word", job_id, block=block)
        if word == 0:  # never opened: what a job call would revert with
            _refuse("escrow: unknown job",
                    "" if block == "latest" else f"no job with that id at block {block!s}")
        return int(word), int(ext)

    def _known(self, job_id: int, word: int, ext: int,
               at: int | None) -> tuple[JobFields, FirstVote | None] | str:
        """The job's fields and first round-0 vote at block `at` (None: the newest) from what
        the logs told so far, if they match the stored `word`; else why not."""
        rec = self._book.jobs.get(job_id)
        f = rec.at(at) if rec is not None else None
        if rec is None or f is None:
            return f"no JobOpened log of job {job_id}"
        if not f.matches(job_id, word, self._terms_hash(f.pact_id)):
            return (f"the fields its logs give (state {f.state}, deadline {f.deadline}) do not "
                    f"hash to the stored word 0x{word:064x}")
        first = rec.first_vote_at(at)
        r0 = jobfields.round0_lanes(f, jobfields.lanes_of(word, ext))
        if first is None:
            if r0 and not rec.no_first_vote:
                return "its lanes hold round-0 votes, and no VoteCounted log was read yet"
        else:
            members = self._version(f.committee_version)[1]
            i = members.index(first.member) if first.member in members else -1
            if i < 0 or (r0 >> (16 * i)) % jobfields.LANE != first.score_bps + 1:
                return f"its first round-0 vote ({first.member}) is not in its round-0 lanes"
        return f, first

    def _refresh(self, job_id: int, at: int | None, word: int, ext: int,
                 why: str) -> tuple[int, int, JobFields, FirstVote | None]:
        """Read the logs the job needs and check again: every job's from the last block read
        on; if that is not enough (a reorg, logs missing), this job's from the deployment on.
        `word` was read at `at` (None: "latest"). Holds the book's lock."""
        book = self._book
        latest = at is None
        if at is None:
            at = int(self.w3.eth.block_number)
            # a chain shorter than what was read (a node behind, or reverted): read on from
            # its head (a log read twice folds once; a job whose logs changed no longer matches
            # and has its own logs read again)
            book.scanned = min(book.scanned, at)
        if at > book.scanned:
            self._scan(book.scanned + 1, at)
            # the word was read at or before `at`: a transition in between shows as a mismatch
            got = self._known(job_id, word, ext, None if latest else at)
            if not isinstance(got, str):
                return word, ext, *got
            why = got
        if latest:
            word, ext = self._job_word(job_id, at)  # the word at the block the logs go up to
            got = self._known(job_id, word, ext, at)
            if not isinstance(got, str):
                return word, ext, *got
            why = got
        log.info("job %d: %s; reading its logs again from block %d", job_id, why,
                 self.manifest.block)
        self._scan(self.manifest.block, book.scanned, job_id)
        got = self._known(job_id, word, ext, at)
        if isinstance(got, str) and got.startswith("its lanes hold"):
            log.warning("job %d: %s (through block %d): its evidence is taken as none", job_id,
                        got, book.scanned)
            book.jobs[job_id].no_first_vote = True
            got = self._known(job_id, word, ext, at)
        if isinstance(got, str):
            raise JobLogsError(f"job {job_id} at block {at}: the escrow's logs do not rebuild "
                               f"its stored word: {got}")
        return word, ext, *got

    def _scan(self, first: int, last: int, job_id: int | None = None) -> None:
        """Fold the job logs of blocks first..last into the book: every job's, moving
        `scanned` on; or, with `job_id`, that job's alone into a new record of it (a reorg may
        have changed what was folded before)."""
        topics: list[Any] = [self._log_topics]
        if job_id is not None:
            topics.append("0x" + job_id.to_bytes(32, "big").hex())
        logs = list(logs_in(self.w3, self.escrow.address, topics, first, last, lean=True))
        book = self._book
        if job_id is not None:
            book.jobs[job_id] = JobRecord(history=[])
        for lg in logs:
            got = self._decode_log(lg)
            if got is None or lg.get("removed"):
                continue
            name, args = got
            jid = int(args["job_id"])
            rec = book.jobs.get(jid)
            if rec is None:
                if name != "JobOpened":
                    continue  # a job opened before the logs read: its own scan rebuilds it
                rec = book.jobs[jid] = JobRecord(history=[])
            rec.fold(int(lg["blockNumber"]), name, args, bytes(lg["transactionHash"]),
                     int(lg["logIndex"]))
        if job_id is None:
            book.scanned = max(book.scanned, last)

    def _version(self, version_id: int) -> tuple[int, list[str]]:
        """A committee version's threshold and members (immutable: read once)."""
        got = self._book.versions.get(version_id)
        if got is None:
            cid, threshold, _, _, members, _, _ = self._reg.read("roster", version_id, False)
            if cid == 0:
                raise UnknownObjectError("committee: unknown version", f"no version {version_id}")
            got = self._book.versions[version_id] = (int(threshold), list(members))
        return got

    def _job_of(self, job_id: int, f: JobFields, word: int, ext: int,
                first: FirstVote | None) -> Job:
        lanes = jobfields.lanes_of(word, ext)
        r0, r1 = (f.r0, lanes) if jobfields.challenged(f) else (lanes, 0)
        state = f.state
        if state == jobfields.SUBMITTED and (
                bin(jobfields.voters(lanes)).count("1") >= self._version(f.committee_version)[0]):
            state = jobfields.VERDICT
        return Job(
            id=job_id, buyer=f.buyer, agent=f.agent, pact_id=f.pact_id, state=JobState(state),
            challenged_by_agent=f.by_agent, committee_version=f.committee_version,
            appeal_version=f.appeal_version, reserved=f.reserved, deadline=f.deadline,
            round0_close=f.close_at, value=f.value, fee=f.fee, deliverable_hash=f.deliverable,
            evidence_hash=first.evidence_hash if first is not None else ZERO_HASH,
            round0=jobfields.scores(r0), round1=jobfields.scores(r1), fields=f,
        )

    def evidence(self, job_id: int) -> Evidence:
        """Keepers: the contract's Evidence for the job's first counted round-0 vote (what
        finalize and resolve pass so that Feedback carries its evidence hash), found again in
        the transaction that posted it: a `settle` vote (batch False, no proof) or a
        `settle_batch` leaf (batch True, the proof of its place in its member's batch, the
        batch's signature and deadline). None found (no round-0 vote; a vote posted through
        a contract wallet's own call): the zero-member Evidence (Feedback's evidence zero),
        with the reason logged."""
        return self._evidence(self.job(job_id))

    def _evidence(self, j: Job) -> Evidence:
        book = self._book
        with book.lock:
            rec = book.jobs.get(j.id)
            first = rec.first_vote if rec is not None else None
            if first is None or first.evidence_hash != j.evidence_hash:
                log.info("job %d has no counted round-0 vote: no evidence", j.id)
                return NO_EVIDENCE
            cached = book.evidence.get(j.id)
            if cached is not None and cached[0] == first:
                return cached[1]
        ev = self._find_evidence(j, first)
        with book.lock:
            book.evidence[j.id] = (first, ev)
        return ev

    def _find_evidence(self, j: Job, first: FirstVote) -> Evidence:
        """The first vote's Evidence, from the transaction that logged it (module docstring
        of evidence)."""
        tx_hash = _hex(first.tx_hash)
        try:
            tx = self.w3.eth.get_transaction(HexBytes(first.tx_hash))
        except TransactionNotFound:
            log.warning("job %d: the transaction of its first round-0 vote (%s) is not found: "
                        "no evidence", j.id, tx_hash)
            return NO_EVIDENCE
        to = tx.get("to")
        if to is None or to_checksum_address(to) != self.escrow.address:
            log.warning("job %d: its first round-0 vote was posted by a call of %s (%s), not of "
                        "the escrow: its signature cannot be read back, no evidence", j.id, to,
                        tx_hash)
            return NO_EVIDENCE
        try:
            fn, args = self.escrow.decode_function_input(tx["input"])
        except (ValueError, Web3Exception):
            log.warning("job %d: transaction %s does not decode as an escrow call: no evidence",
                        j.id, tx_hash)
            return NO_EVIDENCE
        name, member = fn.fn_name, first.member
        if name == "settle" and args["job_id"] == j.id:
            for v in args["votes"]:
                if to_checksum_address(v["member"]) == member:
                    return (member, int(v["score_bps"]), bytes(v["evidence_hash"]),
                            int(v["deadline"]), False, [], bytes(v["signature"]))
        elif name == "settle_batch" and args["round"] == 0:
            sig = next((s for s in args["signatures"]
                        if to_checksum_address(s["member"]) == member), None)
            spec = bytes(args["terms"]["spec_hash"])
            leaves: list[bytes] = []
            mine: dict[str, Any] | None = None
            index, run, last = 0, -1, None
            for it in args["items"] if sig is not None else []:
                if it["job_id"] != last:
                    run, last = run + 1, it["job_id"]
                if to_checksum_address(it["member"]) != member:
                    continue
                if it["job_id"] == j.id:
                    mine, index = it, len(leaves)
                leaves.append(eip712.vote_struct_hash(Vote(
                    job_id=it["job_id"], deliverable_hash=bytes(args["jobs"][run]["deliverable"]),
                    spec_hash=spec, score_bps=it["score_bps"],
                    evidence_hash=bytes(it["evidence_hash"]), round=0,
                    deadline=sig["deadline"] if sig is not None else 0,
                )))
            if sig is not None and mine is not None:
                return (member, int(mine["score_bps"]), bytes(mine["evidence_hash"]),
                        int(sig["deadline"]), True, eip712.merkle_proof(leaves, index),
                        bytes(sig["signature"]))
        log.warning("job %d: transaction %s (%s) holds no vote of %s for it: no evidence", j.id,
                    tx_hash, name, member)
        return NO_EVIDENCE

    def _usable_evidence(self, j: Job) -> Evidence:
        """The first vote's Evidence if the escrow would take it now; else none (a contract
        wallet may no longer sign: settlement does not wait on it)."""
        ev = self._evidence(j)
        member, score, evidence, deadline, batch, proof, sig = ev
        if member == ZERO_ADDRESS:
            return ev
        spec = self.pact(j.pact_id).spec_hash
        leaf = eip712.vote_struct_hash(Vote(
            job_id=j.id, deliverable_hash=j.deliverable_hash, spec_hash=spec, score_bps=score,
            evidence_hash=evidence, round=0, deadline=deadline))
        if batch:
            for sibling in proof:
                leaf = eip712.merkle_root([leaf, sibling])
            leaf = eip712.batch_struct_hash(leaf, 0, deadline)
        try:
            self._check_signature(member, eip712.digest(self.domain(), leaf), sig)
            return ev
        except InvalidSignatureError:
            log.warning("job %d: %s's signature of its first round-0 vote no longer passes: "
                        "Feedback carries no evidence", j.id, member)
            return NO_EVIDENCE

    def job_count(self) -> int:
        """Reads: the number of jobs ever opened (ids are 1..job_count)."""
        return int(self._esc.read("job_count"))

    def agent_stake(self, agent: str, asset: str = ZERO_ADDRESS) -> AgentStake:
        """Reads: an agent's free and locked (bonded) stake in an asset."""
        free, locked = self._esc.read("agent_stake", agent, asset)
        return AgentStake(free=free, locked=locked)

    def evaluator_stake(self, evaluator: str, asset: str = ZERO_ADDRESS) -> EvaluatorStake:
        """Reads: an evaluator's stake, reserved part, pending withdrawal, unlock time."""
        s, r, p, u = self._esc.read("evaluator_stake", evaluator, asset)
        return EvaluatorStake(stake=s, reserved=r, pending=p, unlock_at=u)

    def exposure(self, agent: str, pact_id: int) -> Exposure:
        """The agent's open value under a pact, its cap bonus and its current cap."""
        open_value, bonus = self._esc.read("exposure", agent, pact_id)
        t = self.pact(pact_id)
        return Exposure(open_value=open_value, bonus=bonus,
                        cap=min(t.cap_initial + bonus, t.cap_max))

    def credit(self, account: str, asset: str = ZERO_ADDRESS) -> int:
        """Reads: what an account may withdraw in an asset (pull payments)."""
        return int(self._esc.read("credits", account, asset))

    def burned(self, asset: str = ZERO_ADDRESS) -> int:
        """Reads: what was burned in an asset (counted, never withdrawable)."""
        return int(self._esc.read("burned", asset))

    def roster(self, version_id: int) -> Roster:
        """A committee version: terms, listed members, accepted ones, active ones now."""
        cid, threshold, bond, penalty, members, accepted, active = self._reg.read(
            "roster", version_id, True
        )
        if cid == 0:
            raise UnknownObjectError("committee: unknown version", f"no version {version_id}")
        return Roster(
            version_id=version_id, committee_id=cid, threshold=threshold, bond=bond,
            penalty=penalty, members=list(members),
            accepted=[m for i, m in enumerate(members) if accepted >> i & 1],
            active=[m for i, m in enumerate(members) if active >> i & 1],
        )

    def current_version(self, committee_id: int) -> int:
        """Reads: the version a job opened now binds to."""
        return int(self._reg.read("current_version", committee_id))

    def committee(self, committee_id: int) -> Committee:
        """Reads: a committee's admin, asset, rotation delay and versions."""
        admin, asset, delay = self._reg.read("committees", committee_id)
        if int(admin, 16) == 0:
            raise UnknownObjectError("committee: unknown", f"no committee {committee_id}")
        pending, at = self._reg.read("pending_version", committee_id)
        return Committee(
            id=committee_id, admin=admin, asset=asset, rotation_delay=delay,
            current_version=self.current_version(committee_id), pending_version=pending,
            pending_effective_at=at,
        )

    def paused(self) -> bool:
        """Reads: whether open, accept and creation are paused."""
        return bool(self._reg.read("paused"))

    def owner(self) -> str:
        """Reads: the deployment owner's address."""
        return str(self._reg.read("owner"))

    def guardian(self) -> str:
        """Reads: the guardian's address."""
        return str(self._reg.read("guardian"))

    def asset_allowed(self, asset: str) -> bool:
        """Reads: whether new pacts and committees may use this asset (ETH always)."""
        return asset == ZERO_ADDRESS or bool(self._reg.read("asset_allowed", asset))

    def agent_reputation(self, agent: str, asset: str = ZERO_ADDRESS) -> Counters:
        """Reads: an agent's counters and money released / slashed in an asset."""
        return _counters(
            self._esc.read("agent_counts", agent),
            self._esc.read("agent_money", agent, asset),
        )

    def pact_reputation(self, pact_id: int) -> Counters:
        """Reads: a pact's counters and money released / slashed."""
        return _counters(
            self._esc.read("pact_counts", pact_id),
            self._esc.read("pact_money", pact_id),
        )

    def token(self, asset: str) -> Contract:
        """A web3 contract for an ERC-20 asset (the calls this client makes of it)."""
        return self.w3.eth.contract(address=_addr(asset, "asset"), abi=ERC20_ABI)

    def _token(self, asset: str) -> LeanContract:
        if asset not in self._tokens:
            self._tokens[asset] = LeanContract(self.w3, _addr(asset, "asset"), ERC20_ABI)
        return self._tokens[asset]

    def token_decimals(self, asset: str) -> int:
        """Decimals of an asset, read from the token (ETH: 18)."""
        if asset == ZERO_ADDRESS:
            return 18
        if asset not in self._decimals:
            self._decimals[asset] = int(self._token(asset).read("decimals"))
        return self._decimals[asset]

    def balance(self, account: str, asset: str = ZERO_ADDRESS) -> int:
        """A wallet balance of ETH or a token (not a pactbond credit)."""
        if asset == ZERO_ADDRESS:
            return int(self.w3.eth.get_balance(_addr(account, "account")))
        return int(self._token(asset).read("balanceOf", account))

    def allowance(self, owner: str, asset: str) -> int:
        """What `owner` allows the escrow to pull of a token."""
        return int(self._token(asset).read("allowance", owner, self.escrow.address))

    def events(
        self,
        from_block: int | None = None,
        to_block: int | None = None,
        *,
        confirmations: int = 0,
        names: str | Sequence[str] | None = None,
        job_id: int | None = None,
    ) -> Iterator[EscrowEvent]:
        """Typed escrow events (pactbond.events) in a block range, only from blocks at least
        `confirmations` deep, optionally only some event names or one job."""
        if confirmations < 0:
            raise InvalidInputError("confirmations must be >= 0")
        head = self.w3.eth.block_number - confirmations
        last = head if to_block is None else min(to_block, head)
        first = self.manifest.block if from_block is None else from_block
        wanted = [names] if isinstance(names, str) else names
        try:
            it = iter_events(self.w3, self.escrow, first, last, wanted)
            for ev in it:
                if job_id is None or getattr(ev, "job_id", None) == job_id:
                    yield ev
        except ValueError as e:
            raise InvalidInputError(str(e)) from None

    # -- votes (evaluators sign, anyone verifies) ------------------------------------------
    def domain(self) -> bytes:
        """The EIP-712 domain separator of this deployment's votes."""
        return eip712.domain_separator(self.chain_id, self.escrow.address)

    def vote_for(self, job_id: int, score_bps: int, evidence_hash: bytes, round_: int = 0) -> Vote:
        """Evaluator: the vote to sign for a job (deadline E for round 0, P for round 1)."""
        j = self.job(job_id)
        self._check_vote_state(j, round_)
        return Vote(
            job_id=job_id, deliverable_hash=j.deliverable_hash,
            spec_hash=self.pact(j.pact_id).spec_hash, score_bps=_vote_score(score_bps),
            evidence_hash=evidence_hash, round=round_, deadline=j.deadline,
        )

    def sign_vote(self, vote: Vote, wallet: Wallet | None = None) -> SignedVote:
        """Evaluator: sign a vote as EIP-712 typed data with `wallet` (default: the client's)."""
        w = wallet or self._sender()
        sig = w.sign_typed_data(eip712.typed_data(vote, self.chain_id, self.escrow.address))
        return SignedVote(vote=vote, member=w.address, signature=sig)

    def verify_vote(self, signed: SignedVote) -> None:
        """Anyone: raise the typed error the contract would give unless this vote counts if
        posted now: the job is in the vote's round and before its deadline, the signer is a
        member reserved for the job (round 0) or an accepted appeal member holding the bond
        (round 1), its key is not revoked, it has not voted, the vote names the job's
        deliverable and spec, and the signature passes the contract's rules (ecrecover with
        low s and v in {27, 28}, else ERC-1271 for a contract member)."""
        v = signed.vote
        j = self.job(v.job_id)
        self._check_fields(j, v, "vote: bad signature")
        roster = self.roster(j.appeal_version if v.round else j.committee_version)
        self._check_counts(j, roster, v.round, signed.member, v.deadline, set(),
                           self.next_block_time())
        self._check_signature(
            signed.member, eip712.digest(self.domain(), eip712.vote_struct_hash(v)),
            signed.signature,
        )

    def vote_batch(
        self,
        votes: Sequence[tuple[int, int, bytes]],
        round_: int = 0,
        deadline: int | None = None,
    ) -> VoteBatch:
        """Evaluator: a VoteBatch over (job id, score, evidence hash) votes of one round; its
        deadline defaults to the earliest deadline of the jobs (E for round 0, P for 1)."""
        if not votes:
            _refuse("vote: no votes")
        if len(votes) > MAX_BATCH:
            raise InvalidInputError(f"{len(votes)} votes: a batch holds at most {MAX_BATCH} (a "
                                    "settle_batch call carries whole batches)")
        ids = [jid for jid, _, _ in votes]
        twice = sorted(jid for jid, n in Counter(ids).items() if n > 1)
        if twice:
            raise InvalidInputError(f"a batch holds one vote per job: job(s) {twice} twice")
        jobs = {jid: self.job(jid) for jid in ids}
        pacts = sorted({j.pact_id for j in jobs.values()})
        if len(pacts) > 1:
            _refuse("vote: job of another pact",
                    f"the jobs are of pacts {pacts}: a batch (one call) covers one pact")
        for j in jobs.values():
            self._check_vote_state(j, round_)
        d = deadline if deadline is not None else min(j.deadline for j in jobs.values())
        return VoteBatch(round=round_, deadline=d, votes=[
            Vote(job_id=jid, deliverable_hash=jobs[jid].deliverable_hash,
                 spec_hash=self.pact(jobs[jid].pact_id).spec_hash, score_bps=_vote_score(score),
                 evidence_hash=ev, round=round_, deadline=d)
            for jid, score, ev in votes
        ])

    def sign_batch(self, batch: VoteBatch, wallet: Wallet | None = None) -> SignedVoteBatch:
        """Evaluator: sign a VoteBatch (one signature covers every vote in it)."""
        w = wallet or self._sender()
        sig = w.sign_typed_data(batch.typed_data(self.chain_id, self.escrow.address))
        return SignedVoteBatch(batch=batch, member=w.address, signature=sig)

    def verify_batch(self, signed: SignedVoteBatch) -> None:
        """Anyone: raise unless the batch signature passes the contract's rules and every vote
        in it would count if posted now (as verify_vote)."""
        self._check_batches([signed], signed.batch.round,
                            self.job(signed.batch.votes[0].job_id).pact_id)

    # -- preview ---------------------------------------------------------------------------
    def preview_settlement(
        self, job_id: int, score: int, voters: int | None = None
    ) -> money.Settlement:
        """What settling this job at `score` pays, exactly as the contract will. `voters` is the
        number of counted round-0 votes sharing the fee: by default those counted so far, or,
        before any, every member reserved for the job."""
        j = self.job(job_id)
        n = voters if voters is not None else (len(j.round0) or j.reserved_count)
        if _int(n, "voters") < 1:
            raise InvalidInputError("a settlement has at least one counted vote")
        return money.settle(self.pact(j.pact_id), j.value, _score(score), n)

    def preview_appeal(
        self, job_id: int, round1_scores: Sequence[int], challenger: str | None = None
    ) -> AppealPreview:
        """What resolving a challenge of this job with `round1_scores` counted does: overturn,
        who wins, the challenge bond's split, penalized round-0 voters, the final settlement.
        `challenger` is "buyer", "agent" or their address (default: the job's challenger)."""
        j = self.job(job_id)
        if not j.round0:
            _refuse("escrow: no verdict", f"job {job_id} has no round-0 votes")
        t = self.pact(j.pact_id)
        order = sorted(j.round0)
        r0 = [j.round0[i] for i in order]
        if challenger is None:
            if j.state != JobState.CHALLENGED:
                raise InvalidInputError("name the challenger: the job is not challenged")
            who = "agent" if j.challenged_by_agent else "buyer"
        elif challenger in ("buyer", "agent"):
            who = challenger
        elif _addr(challenger, "challenger") in (j.buyer, j.agent):
            who = "buyer" if _addr(challenger, "challenger") == j.buyer else "agent"
        else:
            _refuse("escrow: not a party", f"{challenger} is neither the buyer nor the agent")
        scores = [_score(s) for s in round1_scores]
        a = money.appeal(t, money.median(r0), r0, scores,
                         self.roster(j.appeal_version).threshold, who)
        r = self.roster(j.committee_version)
        return AppealPreview(
            appeal=a, penalized_members=[r.members[order[k]] for k in a.penalized],
            penalty=r.penalty, settlement=money.settle(t, j.value, a.final_score, len(r0)),
        )

    # -- agent -----------------------------------------------------------------------------
    def stake(self, amount: int, asset: str = ZERO_ADDRESS, evaluator: bool = False,
              approve: bool = False) -> TxReceipt:
        """Agent (or evaluator with evaluator=True): deposit stake. ERC-20: approve first, or
        pass approve=True to have a short allowance raised once the other checks pass."""
        amount = _amount(amount, "amount", "stake: zero amount")
        self._need_funds(asset, amount, permit=approve)
        if approve:
            self._approve_short(asset, amount)
        return self.transact(
            self._esc.call("stake", asset, amount, evaluator),
            value=amount if asset == ZERO_ADDRESS else 0,
        )

    def withdraw_stake(
        self, amount: int, asset: str = ZERO_ADDRESS, to: str | None = None
    ) -> TxReceipt:
        """Agent: withdraw free stake (locked bonds stay until their jobs end)."""
        amount = _amount(amount, "amount", "stake: zero amount")
        free = self.agent_stake(self.address, asset).free
        if amount > free:
            _refuse("stake: exceeds free stake", f"free stake is {free}, asked {amount}")
        return self.transact(
            self._esc.call("withdraw_stake", asset, amount, self._to(to, "stake"))
        )

    def accept(self, job_id: int) -> TxReceipt:
        """Agent: accept an OPEN job until its accept deadline (locks the bond, within the
        exposure cap under the pact)."""
        if self.paused():
            _refuse("escrow: paused")
        j = self._job_in(job_id, JobState.OPEN, "escrow: not open")
        me = self.address
        if j.agent != me:
            _refuse("escrow: not agent", f"job {job_id} is for {j.agent}")
        if self.next_block_time() > j.deadline:
            _refuse("escrow: accept window closed", f"the accept deadline was {j.deadline}")
        t = self.pact(j.pact_id)
        e = self.exposure(me, j.pact_id)
        if e.open_value + j.value > e.cap:
            _refuse("escrow: exposure cap",
                    f"open value {e.open_value} + {j.value} exceeds the cap {e.cap}")
        need = money.bond(t, j.value)
        free = self.agent_stake(me, t.asset).free
        if free < need:
            _refuse("escrow: agent stake below bond",
                    f"stake at least {need - free} more (bond {need}, free {free})")
        return self.transact(self._job_call("accept", j))

    def submit(self, job_id: int, deliverable_hash: bytes, uri: str = "") -> TxReceipt:
        """Agent: submit the hash of the deliverable (and where to fetch it) until the work
        deadline."""
        j = self._job_in(job_id, JobState.ACCEPTED, "escrow: not accepted")
        if j.agent != self.address:
            _refuse("escrow: not agent", f"job {job_id} is for {j.agent}")
        if self.next_block_time() > j.deadline:
            _refuse("escrow: work deadline passed", f"the work deadline was {j.deadline}")
        if len(deliverable_hash) != 32:
            raise InvalidInputError("the deliverable hash is 32 bytes")
        if deliverable_hash == bytes(32):
            _refuse("escrow: empty deliverable", "hash the deliverable's bytes")
        if len(uri.encode()) > 256:
            raise InvalidInputError("the uri is at most 256 bytes")
        return self.transact(
            self._job_call("submit", j, deliverable_hash, uri)
        )

    # -- buyer -----------------------------------------------------------------------------
    def open_job(
        self, pact_id: int, agent: str, value: int,
        expected_versions: tuple[int, int] | None = None, approve: bool = False,
    ) -> int:
        """Buyer: open and fund a job (value + the pact's fee; ERC-20: approve first, pass
        approve=True to have a short allowance raised once every open check passes, or use
        open_with_permit). `expected_versions` (committee, appeal committee) are the versions
        the buyer reviewed; stale ones raise CommitteeChangedError. Returns the job id."""
        t, cv, av = self._check_open(pact_id, agent, value, expected_versions)
        total = value + t.evaluator_fee
        self._need_funds(t.asset, total, permit=approve)
        if approve:
            self._approve_short(t.asset, total)
        receipt = self.transact(
            self._esc.call("open", t.as_tuple(), pact_id, _addr(agent, "agent"), value, cv,
                                       av),
            value=total if t.asset == ZERO_ADDRESS else 0,
        )
        return int(self._events(receipt, "JobOpened")[0]["args"]["job_id"])

    def open_with_permit(
        self,
        pact_id: int,
        agent: str,
        value: int,
        expected_versions: tuple[int, int] | None = None,
        permit_deadline: int | None = None,
    ) -> int:
        """Buyer: open a job on an ERC-20 pact with an EIP-2612 permit for value + fee signed
        by the wallet (typed data) and sent in the same call: no approve transaction.
        Returns the job id."""
        t = self.pact(pact_id)
        if t.asset == ZERO_ADDRESS:
            _refuse("escrow: permit needs a token", "an ETH pact takes open_job")
        t, cv, av = self._check_open(pact_id, agent, value, expected_versions)
        total = value + t.evaluator_fee
        self._need_funds(t.asset, total, permit=True)
        deadline = permit_deadline if permit_deadline is not None else self.now() + 3600
        sig = self._sender().sign_typed_data(self.permit_typed_data(t.asset, total, deadline))
        r, s, v = sig[:32], sig[32:64], sig[64]
        receipt = self.transact(
            self._esc.call("open_with_permit",
                t.as_tuple(), pact_id, _addr(agent, "agent"), value, cv, av, deadline, v, r, s
            )
        )
        return int(self._events(receipt, "JobOpened")[0]["args"]["job_id"])

    def permit_typed_data(self, asset: str, amount: int, deadline: int) -> dict[str, Any]:
        """The EIP-2612 Permit (owner: the wallet, spender: the escrow) as typed data. Refuses
        a token whose permit domain is not the standard one it can rebuild."""
        tok = self._token(asset)
        owner = self.address
        try:
            name = tok.read("name")
            nonce = tok.read("nonces", owner)
            separator = bytes(tok.read("DOMAIN_SEPARATOR"))
        except Exception:
            _refuse("token: permit unsupported", f"{asset} has no EIP-2612 permit: approve")
        try:
            version = str(tok.read("version"))
        except Exception:
            version = "1"
        domain = {"name": name, "version": version, "chainId": self.chain_id,
                  "verifyingContract": tok.address}
        doc: dict[str, Any] = {
            "types": {
                "EIP712Domain": eip712.DOMAIN_FIELDS,
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ],
            },
            "primaryType": "Permit",
            "domain": domain,
            "message": {"owner": owner, "spender": self.escrow.address, "value": amount,
                        "nonce": nonce, "deadline": deadline},
        }
        if encode_typed_data(full_message=doc).header != separator:
            _refuse("token: permit unsupported",
                    f"{asset}'s permit domain is not the standard one: approve instead")
        return doc

    def approve(self, asset: str, amount: int) -> TxReceipt:
        """Buyer, agent or evaluator: allow the escrow to pull `amount` of an ERC-20."""
        if not 0 <= _int(amount, "amount") < U256:
            raise InvalidInputError(f"an allowance is >= 0 and fits a uint256, got {amount}")
        return self.transact(self._token(asset).call("approve", self.escrow.address, amount))

    def _approve_short(self, asset: str, amount: int) -> None:
        """Raise the escrow's allowance to `amount` if it is short (a token; ETH needs none)."""
        if asset != ZERO_ADDRESS and self.allowance(self.address, asset) < amount:
            self.approve(asset, amount)

    def cancel(self, job_id: int) -> TxReceipt:
        """Buyer any time before acceptance; anyone after the accept deadline. Refunds value
        and fee to the buyer (a credit)."""
        j = self._job_in(job_id, JobState.OPEN, "escrow: not open")
        if self.address != j.buyer and self.next_block_time() <= j.deadline:
            _refuse("escrow: accept window open",
                    f"only the buyer may cancel before {j.deadline}")
        return self.transact(self._job_call("cancel", j))

    def challenge(self, job_id: int, expected_score: int | None = None) -> TxReceipt:
        """Buyer or agent: challenge the round-0 verdict after round-0 close until the
        challenge deadline, paying the challenge bond (ERC-20: approve it first).
        `expected_score` defaults to the round-0 median read now."""
        j = self._job_in(job_id, JobState.VERDICT, "escrow: no verdict to challenge")
        t = self.pact(j.pact_id)
        if t.challenge_window == 0:
            _refuse("escrow: pact has no challenges")
        at = self.next_block_time()
        if at <= j.round0_close:
            _refuse("escrow: round 0 open", f"round 0 closes at {j.round0_close}")
        if at > j.round0_close + t.challenge_window:
            _refuse("escrow: challenge window closed",
                    f"the challenge deadline was {j.round0_close + t.challenge_window}")
        if self.address not in (j.buyer, j.agent):
            _refuse("escrow: not a party")
        s0 = money.median(list(j.round0.values()))
        if expected_score is not None and _int(expected_score, "expected_score") != s0:
            _refuse("escrow: score changed", f"the round-0 score is {s0}, not {expected_score}")
        self._need_funds(t.asset, t.challenge_bond)
        return self.transact(
            self._job_call("challenge", j, s0),
            value=t.challenge_bond if t.asset == ZERO_ADDRESS else 0,
        )

    # -- evaluator -------------------------------------------------------------------------
    def accept_version(self, version_id: int) -> TxReceipt:
        """Evaluator: consent to serve in a committee version (and answer with its stake)."""
        me = self.address
        idx = int(self._reg.read("member_index", version_id, me))
        if idx == 0:
            _refuse("committee: not listed", f"{me} is not listed in version {version_id}")
        if int(self._reg.read("accepted_mask", version_id)) >> (idx - 1) & 1:
            _refuse("committee: already accepted")
        return self.transact(self._reg.call("accept_version", version_id))

    def stake_evaluator(self, amount: int, asset: str = ZERO_ADDRESS) -> TxReceipt:
        """Evaluator: deposit evaluator stake (leaves only after the cooldown)."""
        return self.stake(amount, asset, evaluator=True)

    def request_unstake(self, amount: int, asset: str = ZERO_ADDRESS) -> TxReceipt:
        """Evaluator: start the cooldown for unreserved evaluator stake."""
        amount = _amount(amount, "amount", "stake: zero amount")
        s = self.evaluator_stake(self.address, asset)
        if amount + s.reserved > s.unlocked:
            _refuse("stake: exceeds unreserved stake",
                    f"unreserved stake outside pending withdrawal is {s.unlocked - s.reserved}")
        return self.transact(self._esc.call("request_unstake", asset, amount))

    def withdraw_evaluator_stake(
        self, asset: str = ZERO_ADDRESS, to: str | None = None
    ) -> TxReceipt:
        """Evaluator: withdraw the pending evaluator stake once the cooldown is over."""
        s = self.evaluator_stake(self.address, asset)
        if s.pending == 0:
            _refuse("stake: nothing pending")
        if self.next_block_time() < s.unlock_at:
            _refuse("stake: cooldown not over", f"the stake unlocks at {s.unlock_at}")
        return self.transact(
            self._esc.call("withdraw_evaluator_stake", asset, self._to(to, "stake"))
        )

    def revoke_key(self) -> TxReceipt:
        """Evaluator: revoke its own key at once (votes posted afterwards are refused)."""
        if self._reg.read("revoked", self.address):
            _refuse("committee: already revoked")
        return self.transact(self._reg.call("revoke_key"))

    # -- keeper (anyone) -------------------------------------------------------------------
    def settle(self, job_id: int, votes: Sequence[SignedVote | Sequence[Any]]) -> TxReceipt:
        """Keeper: post round-0 votes (one or many; adding votes is the same call). The call
        reaching the threshold records the verdict; the one closing round 0 with a zero
        challenge window settles the job."""
        return self._post_votes(job_id, votes, 0)

    add_votes = settle

    def appeal(self, job_id: int, votes: Sequence[SignedVote | Sequence[Any]]) -> TxReceipt:
        """Keeper: post round-1 (appeal) votes of a challenged job."""
        return self._post_votes(job_id, votes, 1)

    def settle_batch(
        self, pact_id: int, round_: int, batches: Sequence[SignedVoteBatch]
    ) -> TxReceipt:
        """Keeper: post the votes of many jobs of one pact for one round, one signed
        VoteBatch per member. The escrow rebuilds each member's batch root from that member's
        votes in the call, so the call carries every vote of every batch, each member's in its
        batch's order, the votes of a job adjacent (with the job's fields): the jobs go in an
        order every batch keeps. A batch too big for one call is split before signing."""
        if not batches:
            _refuse("vote: no votes")
        if round_ not in (0, 1):
            _refuse("vote: bad round")
        t = self.pact(pact_id)
        if len({b.member for b in batches}) != len(batches):
            raise InvalidInputError("one batch per member per call")
        if len(batches) > MAX_MEMBERS:
            raise InvalidInputError(f"at most {MAX_MEMBERS} batch signatures per call")
        n = sum(len(b.batch.votes) for b in batches)
        if n > MAX_BATCH:
            raise InvalidInputError(
                f"{n} votes: at most {MAX_BATCH} per call; sign smaller batches (a call carries "
                "whole batches)"
            )
        jobs = self._check_batches(batches, round_, pact_id)
        by_member = [b.items() for b in batches]
        items = [m[jid] for jid in jobs for m in by_member if jid in m]
        return self.transact(self._esc.call(
            "settle_batch", pact_id, t.as_tuple(), round_,
            [j.fields.as_tuple() for j in jobs.values()], items,
            [b.signature_tuple() for b in batches],
        ))

    def finalize(self, job_id: int) -> TxReceipt:
        """Keeper: settle a job with a verdict after its challenge deadline. Feedback carries
        the evidence of its first counted round-0 vote (re-proved: `evidence`)."""
        j = self._job_in(job_id, JobState.VERDICT, "escrow: no verdict")
        t = self.pact(j.pact_id)
        if self.next_block_time() <= j.round0_close + t.challenge_window:
            _refuse("escrow: challenge window open",
                    f"finalize after {j.round0_close + t.challenge_window}")
        return self.transact(self._job_call("finalize", j, self._usable_evidence(j)))

    def expire(self, job_id: int) -> TxReceipt:
        """Keeper: expire an ACCEPTED job after its work deadline (no delivery) or a SUBMITTED
        one without a verdict after its evaluation deadline (evaluator silence)."""
        j = self.job(job_id)
        at = self.next_block_time()
        if j.state == JobState.ACCEPTED and at <= j.deadline:
            _refuse("escrow: work window open", f"expire after {j.deadline}")
        if j.state not in (JobState.ACCEPTED, JobState.SUBMITTED):
            _refuse("escrow: not expirable", f"job {job_id} is {j.state.name}")
        if j.state == JobState.SUBMITTED and at <= j.deadline:
            _refuse("escrow: evaluation window open", f"expire after {j.deadline}")
        return self.transact(self._job_call("expire", j))

    def resolve(self, job_id: int) -> TxReceipt:
        """Keeper: resolve a challenged job after the appeal deadline, or once every active
        appeal member has voted and the appeal threshold is met. Feedback carries the evidence
        of its first counted round-0 vote (re-proved: `evidence`)."""
        j = self._job_in(job_id, JobState.CHALLENGED, "escrow: not challenged")
        if self.next_block_time() <= j.deadline:
            ar = self.roster(j.appeal_version)
            voted = {ar.members[i] for i in j.round1}
            if len(voted) < ar.threshold or set(ar.active) - voted:
                _refuse("escrow: appeal open", f"wait until after {j.deadline}")
        return self.transact(self._job_call("resolve", j, self._usable_evidence(j)))

    # -- everyone --------------------------------------------------------------------------
    def withdraw(self, asset: str = ZERO_ADDRESS, to: str | None = None) -> int:
        """Anyone: withdraw every credit held in `asset`; returns the amount."""
        me = self.address
        amount = self.credit(me, asset)
        if amount == 0:
            _refuse("escrow: nothing to withdraw", f"{me} has no credit in {asset}")
        receipt = self.transact(self._esc.call("withdraw", asset, self._to(to, "escrow")))
        # what was sent, from the event: a credit may have grown since it was read
        return int(self._events(receipt, "Withdrawn")[0]["args"]["amount"])

    # -- pact owner ------------------------------------------------------------------------
    def create_pact(self, terms: PactTerms) -> int:
        """Pact owner: create an immutable pact (the registry's check_pact names a bad term
        before anything is sent). Returns the pact id."""
        self._read(self._reg, "check_pact", terms.as_tuple())
        receipt = self.transact(self._esc.call("create_pact", terms.as_tuple()))
        pid = int(self._events(receipt, "PactCreated")[0]["args"]["pact_id"])
        self._terms[pid] = terms
        return pid

    # -- committee admin -------------------------------------------------------------------
    def create_committee(
        self,
        members: Sequence[str],
        threshold: int,
        evaluator_bond: int,
        evaluator_penalty: int,
        asset: str = ZERO_ADDRESS,
        rotation_delay: int | None = None,
    ) -> int:
        """Committee admin: create a committee (its first version in force at once; members
        count once they accept it). Returns the committee id."""
        if self.paused():
            _refuse("escrow: paused")
        if not self.asset_allowed(asset):
            _refuse("committee: asset not allowed", "the owner must set_asset_allowed first")
        least = int(self._reg.read("MIN_ROTATION_DELAY"))
        delay = rotation_delay if rotation_delay is not None else least
        if _int(delay, "rotation_delay") < least:
            _refuse("committee: rotation delay too short", f"at least {least} s")
        listed = self._check_version(members, threshold, evaluator_bond, evaluator_penalty)
        receipt = self.transact(
            self._reg.call("create_committee",
                asset, delay, listed, threshold, evaluator_bond, evaluator_penalty
            )
        )
        ev = self.registry.events.CommitteeCreated().process_receipt(receipt, errors=DISCARD)
        return int(ev[0]["args"]["committee_id"])

    def propose_version(
        self,
        committee_id: int,
        members: Sequence[str],
        threshold: int,
        evaluator_bond: int,
        evaluator_penalty: int,
    ) -> int:
        """Committee admin: rotate (propose the next version; in force after the rotation
        delay, never for jobs already open). Returns the version id."""
        self._need_admin(committee_id)
        listed = self._check_version(members, threshold, evaluator_bond, evaluator_penalty)
        receipt = self.transact(
            self._reg.call("propose_version",
                committee_id, listed, threshold, evaluator_bond, evaluator_penalty
            )
        )
        ev = self.registry.events.VersionProposed().process_receipt(receipt, errors=DISCARD)
        return int(ev[0]["args"]["version_id"])

    rotate = propose_version

    def approve_pact(self, committee_id: int, pact_id: int) -> TxReceipt:
        """Committee admin: let a pact name this committee (or appeal committee)."""
        self._need_admin(committee_id)
        t = self.pact(pact_id)
        if committee_id not in (t.committee_id, t.appeal_committee_id):
            _refuse("committee: pact does not name it",
                    f"pact {pact_id} names committees {t.committee_id}, {t.appeal_committee_id}")
        return self.transact(
            self._reg.call("approve_pact", committee_id, pact_id, t.as_tuple())
        )

    # -- deployment owner ------------------------------------------------------------------
    def set_asset_allowed(self, asset: str, allowed: bool) -> TxReceipt:
        """Owner: allow or refuse an ERC-20 for new pacts and committees."""
        self._need_owner()
        if not self.w3.eth.get_code(_addr(asset, "asset")):
            _refuse("admin: asset has no code", f"{asset} is not a contract")
        return self.transact(self._reg.call("set_asset_allowed", asset, allowed))

    def set_guardian(self, guardian: str) -> TxReceipt:
        """Owner: set the guardian (who may pause)."""
        self._need_owner()
        return self.transact(self._reg.call("set_guardian", _addr(guardian, "guardian")))

    def transfer_ownership(self, new_owner: str) -> TxReceipt:
        """Owner: start a two-step ownership transfer (the new owner accepts)."""
        self._need_owner()
        return self.transact(
            self._reg.call("transfer_ownership", _addr(new_owner, "new_owner"))
        )

    def accept_ownership(self) -> TxReceipt:
        """Pending owner: complete the ownership transfer."""
        if self._reg.read("pending_owner") != self.address:
            _refuse("admin: not pending owner")
        return self.transact(self._reg.call("accept_ownership"))

    # -- guardian --------------------------------------------------------------------------
    def set_paused(self, paused: bool) -> TxReceipt:
        """Guardian (or owner): pause or unpause open, accept and creation."""
        if self.address not in (self.guardian(), self.owner()):
            _refuse("admin: not guardian")
        return self.transact(self._reg.call("set_paused", paused))

    # -- checks ----------------------------------------------------------------------------
    def _job_call(self, name: str, j: Job, *args: Any) -> Call:
        """A job call: (job_id, the pact's terms, the job's fields, *args)."""
        return self._esc.call(name, j.id, self.pact(j.pact_id).as_tuple(), j.fields.as_tuple(),
                              *args)

    def _job_in(self, job_id: int, state: JobState, reason: str) -> Job:
        j = self.job(job_id)
        if j.state != state:
            _refuse(reason, f"job {job_id} is {j.state.name}, not {state.name}")
        return j

    def _to(self, to: str | None, module: str) -> str:
        if to is None:
            return self.address
        if int(_addr(to, "to"), 16) == 0:
            _refuse(f"{module}: zero recipient")
        return _addr(to, "to")

    def _need_owner(self) -> None:
        if self.address != self.owner():
            _refuse("admin: not owner")

    def _need_admin(self, committee_id: int) -> None:
        admin = self._reg.read("committees", committee_id)[0]
        if admin != self.address:
            _refuse("committee: not admin", f"committee {committee_id}'s admin is {admin}")

    @staticmethod
    def _check_version(
        members: Sequence[str], threshold: int, bond: int, penalty: int
    ) -> list[str]:
        listed: list[str] = [_addr(m, "member") for m in members]
        if not 1 <= _int(threshold, "threshold") <= len(listed):
            _refuse("committee: threshold out of range",
                    f"1 <= threshold <= {len(listed)} members")
        if len(listed) > MAX_MEMBERS:
            raise InvalidInputError(f"at most {MAX_MEMBERS} members")
        if _int(penalty, "evaluator_penalty") > _int(bond, "evaluator_bond") or penalty < 0:
            _refuse("committee: penalty above bond")
        if bond >= U128:
            _refuse("committee: bond too large")
        if ZERO_ADDRESS in listed:
            _refuse("committee: zero member")
        if len(set(listed)) != len(listed):
            _refuse("committee: duplicate member")
        return listed

    def _need_funds(self, asset: str, amount: int, permit: bool = False) -> None:
        """The sender holds `amount` (ETH: plus gas is the node's check) and, for a token,
        has allowed the escrow to pull it (unless a permit comes with the call)."""
        me = self.address
        have = self.balance(me, asset)
        if have < amount:
            if asset == ZERO_ADDRESS:
                _refuse("insufficient funds", f"balance {have} < {amount} wei")
            _refuse("escrow: token transfer failed", f"token balance {have} < {amount}")
        if asset != ZERO_ADDRESS and not permit:
            allowed = self.allowance(me, asset)
            if allowed < amount:
                _refuse("escrow: token transfer failed",
                        f"allowance {allowed} < {amount}: call approve (or open_with_permit)")

    def _check_open(
        self, pact_id: int, agent: str, value: int, expected: tuple[int, int] | None
    ) -> tuple[PactTerms, int, int]:
        """The contract's open checks, in its order."""
        t = self.pact(pact_id)
        value = _amount(value, "value", "escrow: zero value")
        if value + t.evaluator_fee >= U128:
            _refuse("escrow: value too large")
        agent = _addr(agent, "agent")
        me = self.address
        if int(agent, 16) == 0:
            _refuse("escrow: zero agent")
        if agent == me:
            _refuse("escrow: buyer is agent")
        if self.paused():
            _refuse("escrow: paused")
        if not (self._reg.read("approved", t.committee_id, pact_id)
                and self._reg.read("approved", t.appeal_committee_id, pact_id)):
            _refuse("escrow: pact not approved")
        current = (self.current_version(t.committee_id),
                   self.current_version(t.appeal_committee_id))
        if expected is not None and tuple(expected) != current:
            _refuse("escrow: committee changed",
                    f"expected versions {tuple(expected)}, current {current}: review and retry")
        cv, av = current
        r, ar = self.roster(cv), self.roster(av)
        for party in (me, agent):
            if party in r.members or party in ar.members:
                _refuse("escrow: party is evaluator", f"{party} is listed in a committee")
        if ar.threshold < r.threshold:
            _refuse("escrow: appeal threshold low")
        if set(r.members) & set(ar.members):
            _refuse("escrow: committees overlap")
        if len(ar.active) < ar.threshold:
            _refuse("escrow: appeal quorum unavailable",
                    f"{len(ar.active)} active appeal members, threshold {ar.threshold}")
        for m in r.active:
            s = self.evaluator_stake(m, t.asset)
            if s.unlocked < r.bond:
                _refuse("escrow: member stake below bond",
                        f"{m} holds {s.unlocked} outside pending withdrawal, bond {r.bond}")
            if s.unlocked - s.reserved < r.penalty:
                _refuse("escrow: member stake reserved",
                        f"{m} has {s.unlocked - s.reserved} unreserved, penalty {r.penalty}")
        if len(r.active) < r.threshold:
            _refuse("escrow: committee quorum unavailable",
                    f"{len(r.active)} active members, threshold {r.threshold}")
        if not money.committee_bound(value, t, len(r.active), r.threshold, r.penalty):
            bound = (len(r.active) - r.threshold + 1) * r.penalty
            _refuse("escrow: value above committee stake",
                    f"value + fee + slash = {value + t.evaluator_fee + money.slashed(t, value)}"
                    f" > {bound}: lower the value")
        return t, cv, av

    # -- vote checks -----------------------------------------------------------------------
    @staticmethod
    def _check_vote_state(j: Job, round_: int) -> None:
        if round_ == 0 and j.state not in (JobState.SUBMITTED, JobState.VERDICT):
            _refuse("vote: job not in evaluation", f"job {j.id} is {j.state.name}")
        if round_ == 1 and j.state != JobState.CHALLENGED:
            _refuse("vote: job not in appeal", f"job {j.id} is {j.state.name}")
        if round_ not in (0, 1):
            _refuse("vote: bad round")

    def _check_fields(self, j: Job, v: Vote, reason: str) -> None:
        """The contract hashes the job's own deliverable and spec: a vote naming others fails
        as a bad signature (single votes) or as votes that differ from the signed batch."""
        spec = self.pact(j.pact_id).spec_hash
        if v.deliverable_hash != j.deliverable_hash or v.spec_hash != spec:
            _refuse(reason, f"the vote names another deliverable or spec than job {j.id}")

    def _check_counts(
        self, j: Job, r: Roster, round_: int, member: str, deadline: int,
        seen: set[tuple[int, int]], at: int,
    ) -> None:
        """The contract's counting rules for one vote, in its order."""
        self._check_vote_state(j, round_)
        if at > min(deadline, j.deadline):
            _refuse("vote: deadline passed", f"votes count until {min(deadline, j.deadline)}")
        i = r.index(member)
        if round_ == 0:
            if j.round0_close != j.deadline:
                _refuse("vote: round closed")
            if i is None or not j.reserved >> i & 1:
                _refuse("vote: member not reserved", f"{member} was not reserved for job {j.id}")
        elif i is None or r.members[i] not in r.accepted:
            _refuse("vote: not an appeal member", f"{member} did not accept version {r.version_id}")
        if r.members[i] not in r.active:
            _refuse("vote: key revoked", f"{member} revoked its key")
        if round_ == 1:
            s = self.evaluator_stake(member, self.pact(j.pact_id).asset)
            if s.unlocked < r.bond:
                _refuse("vote: member stake below bond", f"{member} holds {s.unlocked} < {r.bond}")
        if i in (j.round1 if round_ else j.round0) or (j.id, i) in seen:
            _refuse("vote: duplicate vote", f"{member} already voted on job {j.id}")
        seen.add((j.id, i))

    def _check_signature(self, member: str, digest: bytes, signature: bytes) -> None:
        """ecrecover rules first (65 bytes, v in {27, 28}, low s, the member); else, for a
        member with code, the contract's own check (ERC-1271)."""
        if len(signature) > MAX_SIG_LEN:
            _refuse("vote: bad signature", f"at most {MAX_SIG_LEN} signature bytes")
        try:
            eip712.verify(digest, signature, member)
            return
        except InvalidSignatureError as e:
            detail = str(e)
        if self.w3.eth.get_code(_addr(member, "member")) and (
            self._esc.read("is_valid_signature", member, digest, signature)
        ):
            return
        _refuse("vote: bad signature", detail)

    def _signed(self, j: Job, vote: SignedVote | Sequence[Any], round_: int) -> SignedVote:
        if isinstance(vote, SignedVote):
            if vote.vote.job_id != j.id or vote.vote.round != round_:
                raise InvalidInputError(
                    f"a vote for job {vote.vote.job_id} round {vote.vote.round} posted as job "
                    f"{j.id} round {round_}"
                )
            return vote
        member, score, evidence, deadline, sig = vote
        return SignedVote(
            vote=Vote(job_id=j.id, deliverable_hash=j.deliverable_hash,
                      spec_hash=self.pact(j.pact_id).spec_hash, score_bps=_vote_score(score),
                      evidence_hash=evidence, round=round_, deadline=deadline),
            member=member, signature=bytes(sig),
        )

    def _post_votes(
        self, job_id: int, votes: Sequence[SignedVote | Sequence[Any]], round_: int
    ) -> TxReceipt:
        if not votes:
            _refuse("vote: no votes")
        if len(votes) > MAX_CALL_VOTES:
            # the escrow's bound (its ABI decoder would refuse with no reason): post the rest
            # in another call, which may land in the same block
            raise InvalidInputError(f"at most {MAX_CALL_VOTES} votes per call; post the rest "
                                    "in another call")
        j = self.job(job_id)
        signed = [self._signed(j, v, round_) for v in votes]
        r = self.roster(j.appeal_version if round_ else j.committee_version)
        at, seen, domain = self.next_block_time(), set[tuple[int, int]](), self.domain()
        for sv in signed:
            self._check_fields(j, sv.vote, "vote: bad signature")
            self._check_counts(j, r, round_, sv.member, sv.vote.deadline, seen, at)
            self._check_signature(
                sv.member, eip712.digest(domain, eip712.vote_struct_hash(sv.vote)), sv.signature
            )
        return self.transact(self._job_call("appeal" if round_ else "settle", j,
                                            [sv.as_tuple() for sv in signed]))

    def _check_batches(
        self, batches: Sequence[SignedVoteBatch], round_: int, pact_id: int | None = None
    ) -> dict[int, Job]:
        """The contract's checks of a settle_batch call of these batches, in its order: every
        vote under the single-vote rules, in call order; then per member the batch root
        rebuilt from its votes (the job's own deliverable and spec, the call's round) and the
        signature. Returns the jobs in call order."""
        order = _call_order([[v.job_id for v in b.batch.votes] for b in batches])
        jobs: dict[int, Job] = {}
        rosters: dict[int, Roster] = {}
        seen: set[tuple[int, int]] = set()
        settling = 0
        at = self.next_block_time()
        for jid in order:
            j = jobs[jid] = self.job(jid)
            if pact_id is not None and j.pact_id != pact_id:
                _refuse("vote: job of another pact", f"job {j.id} is of pact {j.pact_id}")
            vid = j.appeal_version if round_ else j.committee_version
            if vid not in rosters:
                rosters[vid] = self.roster(vid)
            for b in batches:
                for v in b.batch.votes:
                    if v.job_id == jid:
                        self._check_counts(j, rosters[vid], round_, b.member, b.batch.deadline,
                                           seen, at)
            if round_ == 0 and settles_now(j, rosters[vid], self.pact(j.pact_id), seen):
                settling += 1
                if settling > MAX_BATCH_SETTLES:
                    _refuse("vote: batch settles too many jobs",
                            f"more than {MAX_BATCH_SETTLES} of these jobs would settle in one "
                            "call: split the batches")
        domain = self.domain()
        for b in batches:
            for v in b.batch.votes:
                if v.round != round_:
                    _refuse("vote: votes differ from the signed batch",
                            f"{b.member}'s batch is of round {v.round}, the call of {round_}")
                self._check_fields(jobs[v.job_id], v, "vote: votes differ from the signed batch")
            d = eip712.digest(domain, b.batch.struct_hash())
            self._check_signature(b.member, d, b.signature)
        return jobs


ERC20_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": name, "stateMutability": mut,
     "inputs": [{"name": f"a{i}", "type": t} for i, t in enumerate(ins)],
     "outputs": [{"name": "", "type": out}]}
    for name, mut, ins, out in [
        ("approve", "nonpayable", ["address", "uint256"], "bool"),
        ("allowance", "view", ["address", "address"], "uint256"),
        ("balanceOf", "view", ["address"], "uint256"),
        ("decimals", "view", [], "uint8"),
        ("name", "view", [], "string"),
        ("version", "view", [], "string"),
        ("nonces", "view", ["address"], "uint256"),
        ("DOMAIN_SEPARATOR", "view", [], "bytes32"),
    ]
]

"""The pactbond client: typed reads and every contract call, with checks before sending.

    from pactbond import Pactbond, KeyWallet
    pb = Pactbond.connect("http://127.0.0.1:8545", "deployments/local.json", wallet)

Calls are grouped by role in the method names' docstrings; each check made before sending
raises the same typed error (pactbond.errors) that the contract's revert would map to, with a
hint saying what to do. Amounts are int wei; nothing here uses floats.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict
from web3 import Web3
from web3.contract.contract import Contract, ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxParams, TxReceipt, Wei

from pactbond import eip712, money
from pactbond.deploy import Manifest, abi, code_hash
from pactbond.errors import (
    ConnectionMismatchError,
    ContractError,
    InsufficientFundsError,
    InvalidInputError,
    InvalidSignatureError,
    NotAuthorizedError,
    UnknownObjectError,
    WalletError,
    WrongStateError,
    error_for_reason,
)
from pactbond.models import ZERO_ADDRESS, PactTerms, Vote
from pactbond.wallets import Wallet

U128 = 2**128
LANE = 2**16


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
    """A job as stored on-chain, decoded."""

    model_config = ConfigDict(frozen=True)

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
    evidence_hash: bytes
    round0: dict[int, int]  # member index -> score
    round1: dict[int, int]


class AgentStake(BaseModel):
    free: int
    locked: int


class EvaluatorStake(BaseModel):
    stake: int
    reserved: int
    pending: int
    unlock_at: int


class Roster(BaseModel):
    version_id: int
    committee_id: int
    threshold: int
    bond: int
    penalty: int
    members: list[str]
    accepted: list[str]
    active: list[str]


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


def _lanes(word: int) -> dict[int, int]:
    return {i: (word >> (16 * i)) % LANE - 1 for i in range(16) if (word >> (16 * i)) % LANE}


def _counters(counts: int, money_word: int) -> Counters:
    c = [(counts >> (32 * i)) % 2**32 for i in range(8)]
    return Counters(
        settled=c[0],
        passed=c[1],
        partial=c[2],
        failed=c[3],
        no_delivery=c[4],
        no_verdict=c[5],
        challenges=c[6],
        lost_or_overturned=c[7],
        released=money_word % U128,
        slashed=money_word >> 128,
    )


def merged_escrow_abi() -> list[dict[str, Any]]:
    """The escrow's ABI plus the facet functions its fallback runs (one address for all)."""
    names = {e.get("name") for e in abi("PactEscrow")}
    extra = [
        e
        for e in abi("PactEscrowAppeals")
        if e.get("type") in ("function", "event") and e.get("name") not in names
    ]
    return abi("PactEscrow") + extra


def revert_reason(err: Exception) -> str | None:
    """The revert string of a failed call, from web3's error, else None."""
    msg = getattr(err, "message", None) or (err.args[0] if err.args else "")
    if not isinstance(msg, str):
        return None
    for prefix in ("execution reverted: ", "revert: "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg or None


class Pactbond:
    """A connection to one pactbond deployment, optionally with a wallet to send from."""

    def __init__(
        self, w3: Web3, manifest: Manifest, wallet: Wallet | None = None, timeout: float = 120.0
    ) -> None:
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
        self._terms: dict[int, PactTerms] = {}

    # -- connection ------------------------------------------------------------------------
    @classmethod
    def connect(
        cls,
        rpc_url: str,
        manifest: Manifest | str | Path,
        wallet: Wallet | None = None,
        timeout: float = 120.0,
    ) -> Pactbond:
        """Connect over HTTP(S) or WebSocket and refuse a node whose chain id or contract code
        differs from the manifest's."""
        m = manifest if isinstance(manifest, Manifest) else Manifest.load(Path(manifest))
        if rpc_url.startswith(("ws://", "wss://")):
            provider: Any = Web3.LegacyWebSocketProvider(rpc_url)
        elif rpc_url.startswith(("http://", "https://")):
            provider = Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout})
        else:
            raise InvalidInputError(f"RPC URL must start with http(s):// or ws(s)://: {rpc_url!r}")
        w3 = Web3(provider)
        client = cls(w3, m, wallet, timeout)
        client.verify()
        return client

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
        return self.manifest.chain_id

    def now(self) -> int:
        """The chain's time (the latest block's timestamp): deadlines use it, never the clock."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def _sender(self) -> Wallet:
        if self.wallet is None:
            raise WalletError("this call sends a transaction: connect with a wallet")
        return self.wallet

    # -- sending ---------------------------------------------------------------------------
    def transact(self, fn: ContractFunction, value: int = 0) -> TxReceipt:
        """Simulate, sign, send and wait; a revert raises its typed error."""
        wallet = self._sender()
        sender = to_checksum_address(wallet.address)
        params: TxParams = {
            "from": sender,
            "value": Wei(value),
            "chainId": self.chain_id,
            "nonce": self.w3.eth.get_transaction_count(sender, "pending"),
        }
        try:
            tx = fn.build_transaction(params)  # estimates gas: a revert surfaces here
        except ContractLogicError as e:
            raise self._error(e) from None
        # headroom over the estimate: state (and so gas) may move between estimate and inclusion
        tx["gas"] = int(tx["gas"]) * 6 // 5
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(wallet.sign_transaction(dict(tx))),
            timeout=self.timeout,
        )
        if receipt["status"] != 1:
            replay: TxParams = {"from": sender, "value": Wei(value)}
            try:
                fn.call(replay, block_identifier=receipt["blockNumber"])
            except ContractLogicError as e:
                raise self._error(e) from None
            if receipt["gasUsed"] >= tx["gas"]:
                raise ContractError("out of gas", f"the transaction used its whole {tx['gas']} gas")
            raise ContractError("transaction reverted without a reason")
        return receipt

    @staticmethod
    def _error(e: Exception) -> ContractError:
        reason = revert_reason(e)
        return error_for_reason(reason) if reason else ContractError(str(e))

    def _events(self, receipt: TxReceipt, name: str) -> list[Any]:
        return list(getattr(self.escrow.events, name)().process_receipt(receipt, errors=DISCARD))

    # -- reads -----------------------------------------------------------------------------
    def pact(self, pact_id: int) -> PactTerms:
        """A pact's terms (immutable; read once from its PactCreated event, then cached)."""
        if pact_id in self._terms:
            return self._terms[pact_id]
        logs = self.escrow.events.PactCreated().get_logs(
            from_block=self.manifest.block, argument_filters={"pact_id": pact_id}
        )
        if not logs:
            raise UnknownObjectError(
                "escrow: unknown pact", f"no pact {pact_id} on this deployment"
            )
        t = logs[0]["args"]["terms"]
        fields = (
            dict(t) if isinstance(t, Mapping) else dict(zip(PactTerms.model_fields, t, strict=True))
        )
        terms = PactTerms(**fields)
        self._terms[pact_id] = terms
        return terms

    def job(self, job_id: int) -> Job:
        try:
            j, deliverable, evidence, r0, r1 = self.escrow.functions.job(job_id).call()
        except ContractLogicError as e:
            raise self._error(e) from None
        (
            buyer,
            state,
            by_agent,
            pact_id,
            cv,
            av,
            agent,
            reserved,
            deadline,
            close_at,
            value,
            fee,
        ) = j
        return Job(
            id=job_id,
            buyer=buyer,
            agent=agent,
            pact_id=pact_id,
            state=JobState(state),
            challenged_by_agent=by_agent,
            committee_version=cv,
            appeal_version=av,
            reserved=reserved,
            deadline=deadline,
            round0_close=close_at,
            value=value,
            fee=fee,
            deliverable_hash=deliverable,
            evidence_hash=evidence,
            round0=_lanes(r0),
            round1=_lanes(r1),
        )

    def agent_stake(self, agent: str, asset: str = ZERO_ADDRESS) -> AgentStake:
        free, locked = self.escrow.functions.agent_stake(agent, asset).call()
        return AgentStake(free=free, locked=locked)

    def evaluator_stake(self, evaluator: str, asset: str = ZERO_ADDRESS) -> EvaluatorStake:
        s, r, p, u = self.escrow.functions.evaluator_stake(evaluator, asset).call()
        return EvaluatorStake(stake=s, reserved=r, pending=p, unlock_at=u)

    def credit(self, account: str, asset: str = ZERO_ADDRESS) -> int:
        return int(self.escrow.functions.credits(account, asset).call())

    def roster(self, version_id: int) -> Roster:
        cid, threshold, bond, penalty, members, accepted, active = self.registry.functions.roster(
            version_id, True
        ).call()
        if cid == 0:
            raise UnknownObjectError("committee: unknown version", f"no version {version_id}")
        return Roster(
            version_id=version_id,
            committee_id=cid,
            threshold=threshold,
            bond=bond,
            penalty=penalty,
            members=list(members),
            accepted=[m for i, m in enumerate(members) if accepted >> i & 1],
            active=[m for i, m in enumerate(members) if active >> i & 1],
        )

    def current_version(self, committee_id: int) -> int:
        return int(self.registry.functions.current_version(committee_id).call())

    def agent_reputation(self, agent: str, asset: str = ZERO_ADDRESS) -> Counters:
        return _counters(
            self.escrow.functions.agent_counts(agent).call(),
            self.escrow.functions.agent_money(agent, asset).call(),
        )

    def pact_reputation(self, pact_id: int) -> Counters:
        return _counters(
            self.escrow.functions.pact_counts(pact_id).call(),
            self.escrow.functions.pact_money(pact_id).call(),
        )

    def events(
        self,
        name: str,
        from_block: int | None = None,
        to_block: int | None = None,
        confirmations: int = 0,
        **filters: Any,
    ) -> Iterator[Any]:
        """Decoded escrow events in a block range, only from blocks with `confirmations`."""
        head = self.w3.eth.block_number - confirmations
        last = head if to_block is None else min(to_block, head)
        first = self.manifest.block if from_block is None else from_block
        if last < first:
            return iter(())
        ev = getattr(self.escrow.events, name, None)
        if ev is None:
            raise InvalidInputError(f"no escrow event named {name!r}")
        return iter(
            ev().get_logs(from_block=first, to_block=last, argument_filters=filters or None)
        )

    # -- votes -----------------------------------------------------------------------------
    def domain(self) -> bytes:
        return eip712.domain_separator(self.chain_id, self.escrow.address)

    def vote_for(self, job_id: int, score_bps: int, evidence_hash: bytes, round_: int = 0) -> Vote:
        """The vote an oracle signs: deadline E for round 0, P for round 1."""
        j = self.job(job_id)
        want = JobState.CHALLENGED if round_ == 1 else None
        if (want is not None and j.state != want) or (
            round_ == 0 and j.state not in (JobState.SUBMITTED, JobState.VERDICT)
        ):
            raise WrongStateError(
                "vote: job not in evaluation" if round_ == 0 else "vote: job not in appeal",
                f"job {job_id} is {j.state.name}",
            )
        return Vote(
            job_id=job_id,
            deliverable_hash=j.deliverable_hash,
            spec_hash=self.pact(j.pact_id).spec_hash,
            score_bps=score_bps,
            evidence_hash=evidence_hash,
            round=round_,
            deadline=j.deadline,
        )

    def sign_vote(self, vote: Vote, wallet: Wallet | None = None) -> tuple[Any, ...]:
        """A SignedVote tuple for settle/appeal, signed by `wallet` (default: the client's)."""
        w = wallet or self._sender()
        sig = w.sign_digest(eip712.digest(self.domain(), eip712.vote_struct_hash(vote)))
        return (w.address, vote.score_bps, vote.evidence_hash, vote.deadline, sig)

    def verify_vote(self, vote: Vote, signed: Sequence[Any]) -> None:
        """Raise InvalidSignatureError unless `signed` is the member's valid signature of `vote`
        under the contract's rules (EOA members)."""
        member, score, evidence, deadline, sig = signed
        if (score, evidence, deadline) != (vote.score_bps, vote.evidence_hash, vote.deadline):
            raise InvalidSignatureError("signed vote fields differ from the vote")
        eip712.verify(eip712.digest(self.domain(), eip712.vote_struct_hash(vote)), sig, member)

    # -- preview ---------------------------------------------------------------------------
    def preview_settlement(
        self, job_id: int, score: int, voters: int | None = None
    ) -> money.Settlement:
        """What settling this job with `score` pays, exactly as the contract will."""
        j = self.job(job_id)
        n = voters if voters is not None else max(len(j.round0), 1)
        return money.settle(self.pact(j.pact_id), j.value, score, n)

    # -- agent -----------------------------------------------------------------------------
    def stake(self, amount: int, asset: str = ZERO_ADDRESS, evaluator: bool = False) -> TxReceipt:
        """Agent or evaluator: deposit stake (ERC-20: approve first, see `approve`)."""
        _positive(amount, "amount")
        if asset != ZERO_ADDRESS:
            self._need_allowance(asset, amount)
        return self.transact(
            self.escrow.functions.stake(asset, amount, evaluator),
            value=amount if asset == ZERO_ADDRESS else 0,
        )

    def withdraw_stake(
        self, amount: int, asset: str = ZERO_ADDRESS, to: str | None = None
    ) -> TxReceipt:
        """Agent: withdraw free stake."""
        _positive(amount, "amount")
        free = self.agent_stake(self._sender().address, asset).free
        if amount > free:
            raise InsufficientFundsError(
                "stake: exceeds free stake",
                f"free stake is {free}; locked bonds stay until their jobs end",
            )
        return self.transact(
            self.escrow.functions.withdraw_stake(asset, amount, to or self._sender().address)
        )

    def accept(self, job_id: int) -> TxReceipt:
        """Agent: accept an OPEN job (locks the bond, within the exposure cap)."""
        j = self._job_in(job_id, JobState.OPEN, "escrow: not open")
        me = self._sender().address
        if j.agent != me:
            raise NotAuthorizedError("escrow: not agent", f"job {job_id} is for {j.agent}")
        t = self.pact(j.pact_id)
        need = money.bond(t, j.value)
        free = self.agent_stake(me, t.asset).free
        if free < need:
            raise InsufficientFundsError(
                "escrow: agent stake below bond", f"stake at least {need - free} more (bond {need})"
            )
        return self.transact(self.escrow.functions.accept(job_id, t.as_tuple()))

    def submit(self, job_id: int, deliverable_hash: bytes, uri: str = "") -> TxReceipt:
        """Agent: submit the hash of the deliverable (and where to fetch it)."""
        j = self._job_in(job_id, JobState.ACCEPTED, "escrow: not accepted")
        if len(deliverable_hash) != 32 or deliverable_hash == bytes(32):
            raise InvalidInputError("deliverable hash must be 32 non-zero bytes")
        return self.transact(
            self.escrow.functions.submit(
                job_id, self.pact(j.pact_id).as_tuple(), deliverable_hash, uri
            )
        )

    # -- buyer -----------------------------------------------------------------------------
    def open_job(
        self, pact_id: int, agent: str, value: int, expected_versions: tuple[int, int] | None = None
    ) -> int:
        """Buyer: open and fund a job (value + the pact's fee); returns the job id."""
        _positive(value, "value")
        t = self.pact(pact_id)
        me = self._sender().address
        agent = to_checksum_address(agent)
        if agent == me:
            raise InvalidInputError("the buyer cannot be the agent")
        cv, av = expected_versions or (
            self.current_version(t.committee_id),
            self.current_version(t.appeal_committee_id),
        )
        r = self.roster(cv)
        if len(r.active) < r.threshold:
            raise error_for_reason(
                "escrow: committee quorum unavailable",
                f"{len(r.active)} active members, threshold {r.threshold}",
            )
        if not money.committee_bound(value, t, len(r.active), r.threshold, r.penalty):
            raise error_for_reason(
                "escrow: value above committee stake",
                "lower the value: the committee's reserved stake must cover it",
            )
        total = value + t.evaluator_fee
        if t.asset != ZERO_ADDRESS:
            self._need_allowance(t.asset, total)
        receipt = self.transact(
            self.escrow.functions.open(t.as_tuple(), pact_id, agent, value, cv, av),
            value=total if t.asset == ZERO_ADDRESS else 0,
        )
        return int(self._events(receipt, "JobOpened")[0]["args"]["job_id"])

    def cancel(self, job_id: int) -> TxReceipt:
        """Buyer any time before acceptance; anyone after the accept deadline."""
        j = self._job_in(job_id, JobState.OPEN, "escrow: not open")
        return self.transact(self.escrow.functions.cancel(job_id, self.pact(j.pact_id).as_tuple()))

    def challenge(self, job_id: int, expected_score: int) -> TxReceipt:
        """Buyer or agent: challenge the round-0 verdict, paying the challenge bond."""
        j = self._job_in(job_id, JobState.VERDICT, "escrow: no verdict to challenge")
        t = self.pact(j.pact_id)
        return self.transact(
            self.escrow.functions.challenge(job_id, t.as_tuple(), expected_score),
            value=t.challenge_bond if t.asset == ZERO_ADDRESS else 0,
        )

    def approve(self, asset: str, amount: int) -> TxReceipt:
        """Approve the escrow to pull `amount` of an ERC-20."""
        token = self.w3.eth.contract(address=to_checksum_address(asset), abi=_ERC20_ABI)
        return self.transact(token.functions.approve(self.escrow.address, amount))

    def _need_allowance(self, asset: str, amount: int) -> None:
        token = self.w3.eth.contract(address=to_checksum_address(asset), abi=_ERC20_ABI)
        have = token.functions.allowance(self._sender().address, self.escrow.address).call()
        if have < amount:
            raise InsufficientFundsError(
                "escrow: token transfer failed", f"allowance {have} < {amount}: call approve first"
            )

    # -- evaluator -------------------------------------------------------------------------
    def accept_version(self, version_id: int) -> TxReceipt:
        return self.transact(self.registry.functions.accept_version(version_id))

    def request_unstake(self, amount: int, asset: str = ZERO_ADDRESS) -> TxReceipt:
        _positive(amount, "amount")
        return self.transact(self.escrow.functions.request_unstake(asset, amount))

    def withdraw_evaluator_stake(
        self, asset: str = ZERO_ADDRESS, to: str | None = None
    ) -> TxReceipt:
        return self.transact(
            self.escrow.functions.withdraw_evaluator_stake(asset, to or self._sender().address)
        )

    def revoke_key(self) -> TxReceipt:
        return self.transact(self.registry.functions.revoke_key())

    # -- keeper (anyone) -------------------------------------------------------------------
    def settle(self, job_id: int, votes: Sequence[Sequence[Any]]) -> TxReceipt:
        """Post round-0 votes; the call reaching the threshold records the verdict."""
        if not votes:
            raise InvalidInputError("no votes to post")
        j = self.job(job_id)
        return self.transact(
            self.escrow.functions.settle(
                job_id, self.pact(j.pact_id).as_tuple(), [tuple(v) for v in votes]
            )
        )

    def appeal(self, job_id: int, votes: Sequence[Sequence[Any]]) -> TxReceipt:
        """Post round-1 (appeal) votes."""
        if not votes:
            raise InvalidInputError("no votes to post")
        j = self._job_in(job_id, JobState.CHALLENGED, "vote: job not in appeal")
        return self.transact(
            self.escrow.functions.appeal(
                job_id, self.pact(j.pact_id).as_tuple(), [tuple(v) for v in votes]
            )
        )

    def finalize(self, job_id: int) -> TxReceipt:
        j = self._job_in(job_id, JobState.VERDICT, "escrow: no verdict")
        return self.transact(
            self.escrow.functions.finalize(job_id, self.pact(j.pact_id).as_tuple())
        )

    def expire(self, job_id: int) -> TxReceipt:
        j = self.job(job_id)
        if j.state not in (JobState.ACCEPTED, JobState.SUBMITTED):
            raise WrongStateError("escrow: not expirable", f"job {job_id} is {j.state.name}")
        return self.transact(self.escrow.functions.expire(job_id, self.pact(j.pact_id).as_tuple()))

    def resolve(self, job_id: int) -> TxReceipt:
        j = self._job_in(job_id, JobState.CHALLENGED, "escrow: not challenged")
        return self.transact(self.escrow.functions.resolve(job_id, self.pact(j.pact_id).as_tuple()))

    # -- everyone --------------------------------------------------------------------------
    def withdraw(self, asset: str = ZERO_ADDRESS, to: str | None = None) -> int:
        """Withdraw every credit held in `asset`; returns the amount."""
        me = self._sender().address
        amount = self.credit(me, asset)
        if amount == 0:
            raise InsufficientFundsError(
                "escrow: nothing to withdraw", f"{me} has no credit in {asset}"
            )
        self.transact(self.escrow.functions.withdraw(asset, to or me))
        return amount

    # -- pact owner, committee admin, admin, guardian --------------------------------------
    def create_pact(self, terms: PactTerms) -> int:
        try:
            self.registry.functions.check_pact(terms.as_tuple()).call()
        except ContractLogicError as e:
            raise self._error(e) from None
        receipt = self.transact(self.escrow.functions.create_pact(terms.as_tuple()))
        pid = int(self._events(receipt, "PactCreated")[0]["args"]["pact_id"])
        self._terms[pid] = terms
        return pid

    def create_committee(
        self,
        members: Sequence[str],
        threshold: int,
        evaluator_bond: int,
        evaluator_penalty: int,
        asset: str = ZERO_ADDRESS,
        rotation_delay: int | None = None,
    ) -> int:
        delay = (
            rotation_delay
            if rotation_delay is not None
            else int(self.registry.functions.MIN_ROTATION_DELAY().call())
        )
        receipt = self.transact(
            self.registry.functions.create_committee(
                asset, delay, list(members), threshold, evaluator_bond, evaluator_penalty
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
        receipt = self.transact(
            self.registry.functions.propose_version(
                committee_id, list(members), threshold, evaluator_bond, evaluator_penalty
            )
        )
        ev = self.registry.events.VersionProposed().process_receipt(receipt, errors=DISCARD)
        return int(ev[0]["args"]["version_id"])

    def approve_pact(self, committee_id: int, pact_id: int) -> TxReceipt:
        return self.transact(
            self.registry.functions.approve_pact(
                committee_id, pact_id, self.pact(pact_id).as_tuple()
            )
        )

    def set_paused(self, paused: bool) -> TxReceipt:
        return self.transact(self.registry.functions.set_paused(paused))

    def set_guardian(self, guardian: str) -> TxReceipt:
        return self.transact(self.registry.functions.set_guardian(guardian))

    def set_asset_allowed(self, asset: str, allowed: bool) -> TxReceipt:
        return self.transact(self.registry.functions.set_asset_allowed(asset, allowed))

    # -- helpers ---------------------------------------------------------------------------
    def _job_in(self, job_id: int, state: JobState, reason: str) -> Job:
        j = self.job(job_id)
        if j.state != state:
            raise WrongStateError(reason, f"job {job_id} is {j.state.name}, not {state.name}")
        return j


def _positive(x: int, name: str) -> None:
    if not isinstance(x, int) or isinstance(x, bool) or x <= 0:
        raise InvalidInputError(f"{name} must be a positive integer amount in wei, got {x!r}")


_ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function",
        "name": "allowance",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "decimals",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint8"}],
    },
]

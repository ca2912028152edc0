"""Stateful fuzz of pactbond's money against an independent model (RELIABILITY.md C3).

A hypothesis RuleBasedStateMachine drives the deployed contracts on titanoboa through every
money path (stakes, open, cancel, accept, submit, round-0 votes valid and corpus-invalid,
challenge, round-1 votes, resolve, expiries, finalize, withdrawals, pause, committee rotation,
self-revocation, batch votes, time warps) and predicts each call with `model.Model`: a call
the model refuses must revert with one of the reasons the model names, and one it accepts
must succeed. After every step the escrow's ETH balance must equal the model's total exactly,
and every ledger the contract keeps must equal the model's.

Jobs (ADR 011): every job call carries the job's fields, rebuilt from the logs of the calls
before it (tests.contracts.jobs.Tracker, one per sequence); after every step each job's fields
must match its stored word and decode to the model's job. finalize and resolve pass a counted
round-0 vote as Feedback's evidence (now and then none, or a flawed one), and every Feedback a
call logs must be the one the model predicts. One rule posts votes with stale job fields.

Two machines (a fixed pact mix and one with every term drawn) run PACTBOND_FUZZ_EXAMPLES / 2
sequences each (default 500 in all) of PACTBOND_FUZZ_STEPS steps (default 50); `pytest -n 2`
runs them side by side. The seed is random per run, printed, and noted on a failure:
PACTBOND_FUZZ_SEED=<seed> replays it. PACTBOND_FUZZ_REPORT=<file> appends the count of every
call outcome and money path to <file>; --hypothesis-show-statistics shows the same as the
share of sequences that reached each. PACTBOND_FUZZ_SHRINK=0 reports a failure unshrunk.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import boa
import eth_abi
import pytest
from eth_hash.auto import keccak
from hypothesis import HealthCheck, Phase, event, note, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    initialize,
    invariant,
    precondition,
    rule,
)

from pactbond import eip712
from pactbond.jobfields import JobFields
from pactbond.models import PactTerms, Vote
from tests.conftest import Actor, actor
from tests.contracts.conftest import COOLDOWN, DAY, E18, ETH, HOUR
from tests.contracts.jobs import JOB_CALLS, NO_EVIDENCE, Escrow, Tracker, decode
from tests.contracts.stateful.conftest import EV_BOND, EV_PENALTY, FuzzBase
from tests.contracts.stateful.model import (
    ACCEPTED,
    BPS,
    CHALLENGED,
    OPEN,
    STALE,
    STATE_NAMES,
    SUBMITTED,
    TERMINAL,
    VERDICT,
    BatchItemIn,
    EvidenceIn,
    Job,
    Model,
    VoteIn,
    bond_of,
    median_of,
    money,
    pay_of,
    slash_of,
)

EXAMPLES = int(os.environ.get("PACTBOND_FUZZ_EXAMPLES", "500"))
STEPS = int(os.environ.get("PACTBOND_FUZZ_STEPS", "50"))
SEED = int(os.environ.get("PACTBOND_FUZZ_SEED") or secrets.randbits(32))
REPORT = os.environ.get("PACTBOND_FUZZ_REPORT")  # a file: each call's outcome counts are appended
INSURANCE = actor("insurance").address
HITS: dict[str, Counter[str]] = {}  # machine -> "call: outcome" -> count, over the whole run
RULES: list[str] = []  # every rule's name (a rule never run is reported with 0 steps)

SECP256K1_N = eip712.SECP256K1_N
ERROR_SELECTOR = bytes.fromhex("08c379a0")
LIVE = (OPEN, ACCEPTED, SUBMITTED, VERDICT, CHALLENGED)

K = st.integers(0, 63)  # picks among candidates (index modulo their number)
STRAY = st.integers(0, 9)  # ODD: pick any job, whatever its state (refusal paths)
FLAG = st.integers(0, 9)  # ODD (and ODD + 1): a flawed variant of the call
EDGE = st.integers(0, 5)  # 4, 5: first move time to the job's next deadline, or one second past it
EVIDENCE = st.integers(0, 19)  # 1, 2: none, another vote; ODD..ODD + 2: flawed (MoneyMachine.evidence)
ODD = 5  # hypothesis favours 0 and the bounds: flaws sit in the middle to stay ~10 %
# a score, or a token for a band boundary of the job's pact (see MoneyMachine.score)
SCORE = st.one_of(st.integers(-6, -1), st.integers(0, BPS))
SCORES = st.lists(SCORE, min_size=3, max_size=3)
AMOUNT = st.one_of(st.integers(1, 1000), st.integers(1, 5 * E18))
SMALL_VALUE = st.one_of(st.integers(1, 10**6), st.integers(10**15, E18))
FRAC = st.sampled_from([0, 1, 10, 50, 100, 101])  # percent of what may leave; 0: zero amount, 101: too much
VALUE = st.one_of(st.integers(1, 1000), st.integers(10**15, 4 * E18), st.sampled_from([E18 // 10, E18]))
WARPS = [HOUR, HOUR + 1, DAY, DAY + 1, 7 * DAY + 1, COOLDOWN + 1]
INVALID_KINDS = ["flip_r", "high_s", "bad_v", "long", "other_key", "wrong_field", "wrong_job",
                 "duplicate_existing", "duplicate_in_call", "non_member", "outsider", "revoked",
                 "expired"]


def _reason(output: bytes) -> str:
    if output[:4] == ERROR_SELECTOR:
        return eth_abi.decode(["string"], output[4:])[0]
    return f"<revert 0x{output.hex()}>"


def counted(f: Any) -> Any:
    """Count each run of a rule (one step) under "rule <name>", for the per-rule share of steps."""
    RULES.append(f.__name__)

    @functools.wraps(f)
    def run(self: Any, **kw: Any) -> Any:
        HITS.setdefault(type(self).__name__, Counter())[f"rule {f.__name__}"] += 1
        event(f"rule {f.__name__}")  # hypothesis statistics: the share of sequences running it
        return f(self, **kw)
    return run


def has(*states: int):
    return lambda self: any(j.state in states for j in self.m.jobs.values())


def any_job(self: Any) -> bool:
    return bool(self.m.jobs)


def reaches(*states: int):
    """A job is in `states`, or a live one short of them can be driven there (`drive`)."""
    return lambda self: any(j.state in states or (j.state in LIVE and j.state < max(states))
                            for j in self.m.jobs.values())


@dataclass
class Batch:
    """One settle_batch call's arguments (items, sigs) and what the model is told of them."""

    leaves: dict[str, list[bytes]]  # member -> its vote struct hashes, in call order
    deadlines: dict[str, int]  # member -> its batch deadline
    items: list[tuple[Any, ...]] = field(default_factory=list)
    sigs: list[tuple[Any, ...]] = field(default_factory=list)
    ins: list[BatchItemIn] = field(default_factory=list)
    signers: dict[str, tuple[int, bool]] = field(default_factory=dict)

    def record(self, machine: MoneyMachine) -> None:
        """The counted votes as Evidence: a leaf of its member's batch, with its proof."""
        sig = {a: s for a, _, _, s in self.sigs}
        seen: dict[str, int] = {}
        for jid, member, score, ev in self.items:
            n = seen[member] = seen.get(member, -1) + 1
            machine.signed.setdefault((jid, member), (
                member, score, ev, self.deadlines[member], True, eip712.merkle_proof(self.leaves[member], n),
                sig[member]))


class MoneyMachine(RuleBasedStateMachine):
    """Rules drive the chain and the model side by side; invariants compare them."""

    base: FuzzBase  # set by the test before running

    def __init__(self) -> None:
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        b = self.b = self.base
        self.m: Model = b.base_model(now=boa.env.evm.patch.timestamp)
        note(f"pactbond fuzz seed {SEED}: replay with PACTBOND_FUZZ_SEED={SEED}")
        self.actor = b.by_address()
        self.evaluators = [*b.pool, *b.appeal_pool]
        self.revoke_budget = 0
        self.revocations = 0
        self.nonce = 0
        self.terminal_seen: dict[int, int] = {}
        self.steps = 0
        # ADR 011: this sequence's job fields, rebuilt from the logs of its calls (the chain
        # rolls back after each sequence, so the tracker is the sequence's own)
        self.escrow = Escrow(*b.escrow.raw, tracker=Tracker())
        self.escrow.registry = b.registry
        self.history: dict[int, list[JobFields]] = {}  # a job's earlier fields, oldest first
        self.signed: dict[tuple[int, str], tuple[Any, ...]] = {}  # counted round-0 votes as Evidence
        self.thresholds: dict[int, int] = {}  # committee version -> threshold (for VERDICT)
        HITS.setdefault(type(self).__name__, Counter())["(sequences)"] += 1

    def teardown(self) -> None:
        self._anchor.__exit__(None, None, None)

    def _check_views(self) -> None:
        """Every tenth step, the public views against the model: they hold the raw-storage
        decoding of the per-step invariants to the contract's own reading of its words."""
        e, m = self.b.escrow, self.m
        for a in self.b.agents:
            assert e.agent_stake(a.address, ETH) == (m.agent_free[a.address], m.agent_locked[a.address]), a.name
        for a in self.evaluators:
            x = a.address
            assert e.evaluator_stake(x, ETH) == (m.ev_stake[x], m.ev_reserved[x], m.ev_pending[x], m.ev_unlock[x]), \
                f"{a.name}: evaluator_stake view"
        for a in self.b.tracked:
            if m.credits[a.address]:
                assert e.credits(a.address, ETH) == m.credits[a.address], f"{a.name}: credits view"
        assert e.burned(ETH) == m.burned
        self._check_registry()

    # -- plumbing -----------------------------------------------------------------------------------
    def act(self, label: str, reasons: list[str], contract: Any, fname: str, *args: Any, sender: Actor,
            value: int = 0, fields: Any = None) -> bytes:
        """Send one call; hold its outcome to the model's prediction `reasons` (empty: accepted).
        A call of the escrow (an Escrow proxy) gets the job's fields inserted as the proxy does
        (`fields`: these instead: one JobFields tuple, or settle_batch's list of them); the logs
        of an accepted call update the job fields, and its Feedback logs must be the model's."""
        if isinstance(contract, Escrow):
            args = self._with_fields(fname, args, fields)
            contract = contract._find(fname)
        data = getattr(contract, fname).prepare_calldata(*args)
        c = boa.env.execute_code(to_address=contract.address, sender=sender.address, value=value, data=data)
        why = _reason(c.output) if c.is_error else None
        if reasons:
            assert why is not None, f"{label}: the model refuses {sorted(set(reasons))}, the contract accepted"
            assert why in reasons, (f"{label}: the contract refused with {why!r}; "
                                    f"the model expected one of {sorted(set(reasons))}")
        else:
            assert why is None, f"{label}: the model accepts, the contract refused with {why!r}"
        self._observe(label, list(c.get_raw_log_entries()))
        outcome = f"{label}: {'ok' if why is None else 'refused (' + why + ')'}"
        event(outcome)
        hits = HITS.setdefault(type(self).__name__, Counter())
        hits[outcome] += 1
        for path in self.m.take_paths():
            event(path)
            hits[path] += 1
        return b"" if c.is_error else c.output

    def _with_fields(self, fname: str, args: tuple[Any, ...], fields: Any) -> tuple[Any, ...]:
        if fname in JOB_CALLS:
            return (args[0], args[1], self.escrow.jobs.of(args[0]) if fields is None else fields, *args[2:])
        if fname == "settle_batch":
            return (*args[:3], self.escrow._runs(args[3]) if fields is None else fields, *args[3:])
        return args

    def _observe(self, label: str, logs: list[Any]) -> None:
        """Fold an accepted call's logs into the job fields (keeping each job's earlier fields)
        and hold its Feedback logs (job, score, evidence, parties) to the model's; a refused
        call has no logs, and the model predicts no Feedback for it."""
        tracker = self.escrow.jobs
        before = dict(tracker.fields)
        tracker.observe(logs)
        for jid, f in tracker.fields.items():
            old = before.get(jid)
            if old is not None and old != f:
                self.history.setdefault(jid, []).append(old)
        feedback = []
        for _, _, topics, data in logs:
            got = decode(list(topics), bytes(data))
            if got is not None and got[0] == "Feedback":
                a = got[1]
                j = self.m.jobs[a["job_id"]]
                assert (a["agent"].lower(), a["buyer"].lower(), a["pact_id"]) == (j.agent.lower(), j.buyer.lower(), j.pact_id), \
                    f"{label}: Feedback of job {j.jid} names other parties"
                feedback.append((a["job_id"], a["score_bps"], bytes(a["evidence_hash"])))
        want = self.m.take_feedback()
        assert feedback == want, f"{label}: Feedback {feedback}, the model's {want}"

    def threshold(self, vid: int) -> int:
        t = self.thresholds.get(vid)
        if t is None:
            t = self.thresholds[vid] = int(self.b.registry.roster(vid, False)[1])
        return t

    def fields(self, jid: int) -> JobFields:
        f = self.escrow.jobs.fields.get(jid)
        assert f is not None, f"job {jid}: no fields rebuilt from the logs"
        return f

    def warp(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)
        self.m.now += seconds
        HITS.setdefault(type(self).__name__, Counter())["time warp"] += 1

    def pick(self, states: tuple[int, ...], k: int, stray: int = 0) -> int:
        ids = [jid for jid, j in self.m.jobs.items() if j.state in states]
        if stray == ODD or not ids:
            ids = list(self.m.jobs)
        return ids[k % len(ids)]

    def pick_ready(self, states: tuple[int, ...], ready: Any, k: int, stray: int) -> Job:
        """A job in `states` for which `ready(job)` holds (the call should go through), else
        any job in `states`; with `stray`, any job at all."""
        ids = [jid for jid, j in self.m.jobs.items() if j.state in states and ready(j)]
        if stray == ODD or not ids:
            return self.m.jobs[self.pick(states, k, stray)]
        return self.m.jobs[ids[k % len(ids)]]

    def to_edge(self, j: Job, edge: int, final: bool = False) -> Job:
        """With edge 4 or 5, time moves to the job's next deadline (with `final`, the end of its
        challenge window), or one second past it: the boundaries where "until X" and "after X"
        part. Then the call."""
        if edge >= 4 and j.state in LIVE:
            due = j.close_at + self.m.pacts[j.pact_id].challenge_window if final else self._due(j)
            target = due + edge - 4
            if target > self.m.now:
                self.warp(target - self.m.now)
        return j

    def terms(self, j: Job) -> tuple[Any, ...]:
        return self.m.pacts[j.pact_id].as_tuple()

    def scores(self, j: Job, tokens: list[int], n: int) -> list[int]:
        """n scores: a boundary token first means the members agree on that boundary score."""
        if tokens[0] < 0:
            return [self.score(j, tokens[0])] * n
        return [self.score(j, tokens[i % len(tokens)]) for i in range(n)]

    def score(self, j: Job, token: int) -> int:
        if token >= 0:
            return token
        t = self.m.pacts[j.pact_id]
        # -1 (what hypothesis draws most) is the pass threshold; then the other band boundaries
        return [t.pass_at_bps, max(t.fail_below_bps - 1, 0), BPS, t.fail_below_bps, 0,
                max(t.pass_at_bps - 1, 0)][-token - 1]

    def sign(self, member: Actor, j: Job, score: int, round_: int, deadline: int, *, signer: Actor | None = None,
             signed_score: int | None = None, signed_job: int | None = None) -> tuple[Any, ...]:
        """A SignedVote tuple; `signer`, `signed_score`, `signed_job` forge a wrong signature."""
        evidence = keccak(f"evidence:{j.jid}:{member.address}:{round_}".encode())
        v = Vote.model_construct(
            job_id=j.jid if signed_job is None else signed_job, deliverable_hash=j.deliverable or bytes(32),
            spec_hash=self.m.pacts[j.pact_id].spec_hash,
            score_bps=score if signed_score is None else signed_score, evidence_hash=evidence, round=round_,
            deadline=deadline)
        sig = eip712.sign_digest((signer or member).key, eip712.digest(self.b.domain, eip712.vote_struct_hash(v)))
        return (member.address, score, evidence, deadline, sig)

    def eligible0(self, j: Job) -> list[Actor]:
        v = self.m.versions[j.cv]
        return [self.actor[v.members[i]] for i in sorted(j.reserved)
                if i not in j.r0 and v.members[i] not in self.m.revoked]

    def eligible1(self, j: Job) -> list[Actor]:
        a = self.m.versions[j.av]
        m = self.m
        return [self.actor[a.members[i]] for i in sorted(a.accepted)
                if i not in j.r1 and a.members[i] not in m.revoked
                and m.ev_stake[a.members[i]] - m.ev_pending[a.members[i]] >= a.bond]

    def setup_world(self, terms: list[PactTerms], budget: int, stakes: list[int]) -> None:
        b = self.b
        for t in terms:
            pid = self.m.create_pact(t)
            out = self.act("create_pact", [], b.escrow, "create_pact", t.as_tuple(), sender=b.pact_owner)
            assert int.from_bytes(out, "big") == pid
            for cid in (t.committee_id, t.appeal_committee_id):
                self.act("approve_pact", [], b.registry, "approve_pact", cid, pid, t.as_tuple(), sender=b.admin)
        for agent, amount in zip(b.agents, stakes, strict=True):
            if amount:
                self.act("stake (agent)", self.m.stake(agent.address, amount, False), b.escrow, "stake", ETH,
                         amount, False, sender=agent, value=amount)
        self.revoke_budget = budget

    # -- stakes -------------------------------------------------------------------------------------
    @rule(who=st.integers(0, 2), withdraw=st.booleans(), amount=AMOUNT, frac=FRAC)
    @counted
    def agent_stake(self, who: int, withdraw: bool, amount: int, frac: int) -> None:
        """stake (free at once) or withdraw_stake (free stake only: bonds stay locked)."""
        a = self.b.agents[who]
        if not withdraw:
            self.act("stake (agent)", self.m.stake(a.address, amount, False), self.b.escrow, "stake", ETH, amount,
                     False, sender=a, value=amount)
            return
        free = self.m.agent_free[a.address]
        amount = free * frac // 100 if frac <= 100 else free + 1
        before = boa.env.get_balance(a.address)
        reasons = self.m.withdraw_stake(a.address, amount)
        self.act("withdraw_stake", reasons, self.b.escrow, "withdraw_stake", ETH, amount, sender=a)
        if not reasons:
            assert boa.env.get_balance(a.address) == before + amount

    @rule(who=st.integers(0, 7), kind=st.integers(0, 2), amount=AMOUNT, frac=FRAC)
    @counted
    def evaluator_stake(self, who: int, kind: int, amount: int, frac: int) -> None:
        """stake (evaluator), request_unstake (cooldown starts), withdraw_evaluator_stake."""
        m = self.m
        e = self.evaluators[who]
        if kind == 0:
            self.act("stake (evaluator)", m.stake(e.address, amount, True), self.b.escrow, "stake", ETH, amount,
                     True, sender=e, value=amount)
        elif kind == 1:
            free = m.ev_stake[e.address] - m.ev_reserved[e.address] - m.ev_pending[e.address]
            amount = free * frac // 100 if frac <= 100 else free + 1
            self.act("request_unstake", m.request_unstake(e.address, amount), self.b.escrow, "request_unstake", ETH,
                     amount, sender=e)
        else:
            pending = [x for x in self.evaluators if m.ev_pending[x.address]]
            e = pending[who % len(pending)] if pending and frac else e
            if frac in (50, 100) and m.now < m.ev_unlock[e.address]:  # wait out the cooldown, to the second
                self.warp(m.ev_unlock[e.address] - m.now)
            amount = m.ev_pending[e.address]
            before = boa.env.get_balance(e.address)
            reasons = m.withdraw_evaluator_stake(e.address)
            self.act("withdraw_evaluator_stake", reasons, self.b.escrow, "withdraw_evaluator_stake", ETH, sender=e)
            if not reasons:
                assert boa.env.get_balance(e.address) == before + amount

    @precondition(lambda self: any(self.m.credits.values()))
    @rule(k=K, stray=STRAY)
    @counted
    def withdraw_credits(self, k: int, stray: int) -> None:
        holders = [a for a in self.b.tracked if self.m.credits[a.address] > 0]
        if stray == ODD or not holders:
            holders = self.b.tracked
        who = holders[k % len(holders)]
        amount = self.m.credits[who.address]
        before = boa.env.get_balance(who.address)
        reasons = self.m.withdraw(who.address)
        self.act("withdraw", reasons, self.b.escrow, "withdraw", ETH, sender=who)
        if not reasons:
            assert boa.env.get_balance(who.address) == before + amount

    # -- jobs ---------------------------------------------------------------------------------------
    @rule(buyer=st.integers(0, 2), agent=FLAG, pid=st.integers(1, 3), value=VALUE, flaw=st.integers(0, 19))
    @counted
    def open_job(self, buyer: int, agent: int, pid: int, value: int, flaw: int) -> None:
        self._open(self.b.buyers[buyer], self.b.buyers[buyer] if agent == ODD else self.b.agents[agent % 3], pid,
                   value, flaw)

    def _open(self, bu: Actor, ag: Actor, pid: int, value: int, flaw: int = 0) -> None:
        t = self.m.pacts[pid]
        cv, av = self.m.current_version(t.committee_id), self.m.current_version(t.appeal_committee_id)
        if flaw == ODD:  # the buyer expects another committee version
            cv = cv - 1 if cv > 1 else cv + 1
        sent = value + t.evaluator_fee + (1 if flaw == ODD + 1 else 0)
        reasons = self.m.open(bu.address, ag.address, pid, value, cv, av, sent)
        out = self.act("open", reasons, self.b.escrow, "open", t.as_tuple(), pid, ag.address, value, cv, av,
                       sender=bu, value=sent)
        if not reasons:
            assert int.from_bytes(out, "big") == self.m.job_count

    @precondition(any_job)
    @rule(k=K, stray=STRAY, by=st.integers(0, 3), edge=EDGE)
    @counted
    def cancel(self, k: int, stray: int, by: int, edge: int) -> None:
        self.drive((OPEN,), k)
        j = self.to_edge(self.m.jobs[self.pick((OPEN,), k, stray)], edge)
        sender = self.actor[j.buyer] if by < 2 else self.b.attacker if by == 2 else self.actor[j.agent]
        self.act("cancel", self.m.cancel(j.jid, sender.address), self.b.facet, "cancel", j.jid, self.terms(j),
                 sender=sender)

    @precondition(any_job)
    @rule(k=K, stray=STRAY, imposter=FLAG, edge=EDGE)
    @counted
    def accept(self, k: int, stray: int, imposter: int, edge: int) -> None:
        self.drive((OPEN,), k)
        j = self.to_edge(self.pick_ready((OPEN,), lambda j: self.m.now <= j.deadline, k, stray), edge)
        sender = self.actor[j.agent]
        if imposter == ODD:
            sender = next(a for a in self.b.agents if a.address != j.agent)
        self.act("accept", self.m.accept(j.jid, sender.address), self.b.escrow, "accept", j.jid, self.terms(j),
                 sender=sender)

    @precondition(any_job)
    @rule(k=K, stray=STRAY, edge=EDGE)
    @counted
    def submit(self, k: int, stray: int, edge: int) -> None:
        self.drive((ACCEPTED,), k)
        self._submit(self.to_edge(self.m.jobs[self.pick((ACCEPTED,), k, stray)], edge))

    def _submit(self, j: Job) -> None:
        self.nonce += 1
        deliverable = keccak(f"deliverable:{j.jid}:{self.nonce}".encode())
        self.act("submit", self.m.submit(j.jid, j.agent, deliverable), self.b.escrow, "submit", j.jid,
                 self.terms(j), deliverable, "", sender=self.actor[j.agent])

    @precondition(has(ACCEPTED, SUBMITTED))
    @rule(k=K, stray=STRAY, edge=EDGE)
    @counted
    def expire(self, k: int, stray: int, edge: int) -> None:
        j = self.to_edge(self.pick_ready((ACCEPTED, SUBMITTED), lambda j: self.m.now > j.deadline, k, stray), edge)
        self.act("expire", self.m.expire(j.jid), self.b.facet, "expire", j.jid, self.terms(j), sender=self.b.attacker)

    @precondition(reaches(VERDICT))
    @rule(k=K, stray=STRAY, edge=EDGE, ev=EVIDENCE)
    @counted
    def finalize(self, k: int, stray: int, edge: int, ev: int) -> None:
        self.drive((VERDICT,), k)
        j = self.to_edge(self.pick_ready((VERDICT,), lambda j: self.m.now > self._due(j), k, stray), edge, final=True)
        self._finalize(j, ev)

    def _finalize(self, j: Job, ev: int = 0) -> None:
        label, evidence, e = self.evidence(j, ev)
        reasons = self.m.finalize(j.jid, e)
        self.act(f"finalize{label}", reasons, self.b.escrow, "finalize", j.jid, self.terms(j), evidence,
                 sender=self.b.attacker)
        self._note_evidence(reasons, evidence)

    def _note_evidence(self, reasons: list[str], evidence: tuple[Any, ...]) -> None:
        if not reasons and evidence[4]:  # a settlement took a batch leaf (with its proof) as evidence
            HITS.setdefault(type(self).__name__, Counter())["settled with a batch leaf as evidence"] += 1

    def evidence(self, j: Job, choice: int) -> tuple[str, tuple[Any, ...], EvidenceIn | None]:
        """finalize's and resolve's Evidence (ADR 011): mostly the first counted round-0 vote,
        found as a client finds it (the first VoteCounted log, its signed vote from the call);
        choice 1: none; 2: the last counted vote; ODD: its score off by one (not counted);
        ODD + 1: its signature broken; ODD + 2: an outsider's. (label suffix, argument, model's)"""
        first = self.escrow.jobs.first_r0.get(j.jid)
        e = self.signed.get((j.jid, first[0])) if first else None
        if e is None:  # no counted vote (a stray call): none, as a client would pass
            return "", NO_EVIDENCE, None
        if choice == 1:
            return " (evidence: none)", NO_EVIDENCE, None
        label = ""
        if choice == 2:
            e = [v for (jid, _), v in self.signed.items() if jid == j.jid][-1]
            label = " (evidence: another vote)"
        member, score, evidence, dl, batch, proof, sig = e
        if choice == ODD:
            score, label = score + 1 if score < BPS else score - 1, " (invalid evidence: not counted)"
        elif choice == ODD + 1:
            sig, label = bytes([sig[0] ^ 1]) + sig[1:], " (invalid evidence: unsigned)"
        elif choice == ODD + 2:
            member, label = self.b.buyers[0].address, " (invalid evidence: outsider)"
        return label, (member, score, evidence, dl, batch, proof, sig), \
            EvidenceIn(member, score, evidence, choice != ODD + 1)

    def _record_votes(self, j: Job, votes: list[tuple[Any, ...]]) -> None:
        """Counted round-0 votes, as the Evidence that re-proves them (single signatures)."""
        for member, score, evidence, dl, sig in votes:
            self.signed.setdefault((j.jid, member), (member, score, evidence, dl, False, [], sig))

    # -- round 0 --------------------------------------------------------------------------------------
    @precondition(reaches(SUBMITTED))
    @rule(k=K, stray=STRAY, mask=st.integers(1, 7), scores=SCORES, edge=EDGE)
    @counted
    def settle(self, k: int, stray: int, mask: int, scores: list[int], edge: int) -> None:
        self.drive((SUBMITTED,), k, scores)
        self._round0("settle", self.to_edge(self.m.jobs[self.pick((SUBMITTED,), k, stray)], edge), mask, scores)

    @precondition(reaches(VERDICT))
    @rule(k=K, stray=STRAY, mask=st.integers(1, 7), scores=SCORES)
    @counted
    def add_votes(self, k: int, stray: int, mask: int, scores: list[int]) -> None:
        """Votes after the verdict, before round-0 close (they count toward the median); with no
        such job, votes on a job in VERDICT whose round 0 has closed (refused)."""
        self.drive((VERDICT,), k, scores, mask=1)  # one vote a move: members are left to vote
        ids = [j.jid for j in self.m.jobs.values() if j.state == VERDICT and self.eligible0(j)]
        jid = ids[k % len(ids)] if ids and stray != ODD else self.pick((VERDICT,), k, stray if ids else 0)
        self._round0("add votes", self.m.jobs[jid], mask, scores)

    def _round0(self, label: str, j: Job, mask: int, scores: list[int]) -> None:
        members = self.eligible0(j) or [self.actor[self.m.versions[j.cv].members[i]] for i in sorted(j.reserved)]
        if not members:
            return
        chosen = [m for i, m in enumerate(members) if (mask >> i) & 1] or members[:1]
        dl = j.eval_deadline or self.m.now
        votes, ins = [], []
        for m, s in zip(chosen, self.scores(j, scores, len(chosen)), strict=True):
            votes.append(self.sign(m, j, s, 0, dl))
            ins.append(VoteIn(m.address, s, dl, evidence=votes[-1][2]))
        reasons = self.m.settle(j.jid, ins)
        self.act(label, reasons, self.b.escrow, "settle", j.jid, self.terms(j), votes, sender=self.b.attacker)
        if not reasons:
            self._record_votes(j, votes)

    @precondition(has(SUBMITTED, VERDICT))
    @rule(k=K, kind=st.sampled_from(INVALID_KINDS), token=SCORE, with_valid=st.booleans())
    @counted
    def settle_invalid(self, k: int, kind: str, token: int, with_valid: bool) -> None:
        """A call carrying a corpus-invalid vote: must revert with the model's reason, move nothing."""
        open_rounds = [j.jid for j in self.m.jobs.values() if j.state in (SUBMITTED, VERDICT) and self.eligible0(j)
                       and self.m.now <= j.eval_deadline and not j.closed_early]
        j = self.m.jobs[open_rounds[k % len(open_rounds)] if open_rounds else self.pick((SUBMITTED, VERDICT), k)]
        v = self.m.versions[j.cv]
        eligible = self.eligible0(j)
        reserved = [self.actor[v.members[i]] for i in sorted(j.reserved)]
        m = eligible[0] if eligible else reserved[0]
        s = self.score(j, token)
        dl = j.eval_deadline
        bad, ok = self.sign(m, j, s, 0, dl), False
        if kind == "flip_r":
            bad = (*bad[:4], bytes([bad[4][0] ^ 1]) + bad[4][1:])
        elif kind == "high_s":  # the high-s twin recovers the same signer; the contract takes low s only
            sig = bad[4]
            hs = (SECP256K1_N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
            bad = (*bad[:4], sig[:32] + hs + bytes([55 - sig[64]]))
        elif kind == "bad_v":
            bad = (*bad[:4], bad[4][:64] + bytes([bad[4][64] + 2]))
        elif kind == "long":
            bad = (*bad[:4], bad[4] + b"\x00")
        elif kind == "other_key":
            bad = self.sign(m, j, s, 0, dl, signer=self.b.attacker)
        elif kind == "wrong_field":
            bad = self.sign(m, j, s, 0, dl, signed_score=s ^ 1)
        elif kind == "wrong_job":
            bad = self.sign(m, j, s, 0, dl, signed_job=j.jid + 1000)
        elif kind in ("duplicate_existing", "revoked"):
            pool = ([self.actor[v.members[i]] for i in j.r0] if kind == "duplicate_existing"
                    else [a for a in reserved if a.address in self.m.revoked])
            m = pool[0] if pool else m
            bad, ok = self.sign(m, j, s, 0, dl), bool(pool)
            if not pool:
                bad = (*bad[:4], bytes([bad[4][0] ^ 1]) + bad[4][1:])
        elif kind == "duplicate_in_call":
            bad, ok = self.sign(m, j, s, 0, dl), True
        elif kind == "non_member":
            m = self.b.appeal_pool[1]
            bad, ok = self.sign(m, j, s, 0, dl), True
        elif kind == "outsider":
            m = self.b.buyers[0]
            bad, ok = self.sign(m, j, s, 0, dl), True
        elif kind == "expired":
            dl = self.m.now - 1
            bad, ok = self.sign(m, j, s, 0, dl), True
        votes, ins = [bad], [VoteIn(m.address, s, dl, ok)]
        if kind == "duplicate_in_call":
            votes, ins = votes * 2, ins * 2
        others = [a for a in eligible if a is not m]
        if with_valid and others:
            votes.insert(0, self.sign(others[0], j, s, 0, j.eval_deadline))
            ins.insert(0, VoteIn(others[0].address, s, j.eval_deadline, evidence=votes[0][2]))
        reasons = self.m.settle(j.jid, ins)
        assert reasons, f"test bug: the model accepts an invalid vote ({kind})"
        self.act(f"settle (invalid: {kind})", reasons, self.b.escrow, "settle", j.jid, self.terms(j), votes,
                 sender=self.b.attacker)

    def _batchable(self) -> list[Job]:
        return [j for j in self.m.jobs.values() if j.state in (SUBMITTED, VERDICT) and self.eligible0(j)]

    @precondition(any_job)
    @rule(k=K, mask=st.integers(1, 7), scores=st.lists(SCORE, min_size=6, max_size=6), flaw=st.integers(0, 11))
    @counted
    def settle_batch(self, k: int, mask: int, scores: list[int], flaw: int) -> None:
        """Round-0 votes for up to two jobs of one pact, one VoteBatch signature per member over
        all its votes in the call, in call order (flawed: a posted vote that is not the one its
        member signed, a bad batch signature, a member's items without its signature, a
        signature without items)."""
        if not self._batchable():
            self.drive((SUBMITTED,), k)
        candidates = self._batchable()
        if not candidates:  # the drive was refused on the way (a pause, a cap): nothing to batch
            return
        pid = candidates[k % len(candidates)].pact_id
        jobs = [j for j in candidates if j.pact_id == pid][:2]
        plan: list[tuple[Job, Actor, int]] = []
        for j in jobs:
            el = self.eligible0(j)
            for m in [m for i, m in enumerate(el) if (mask >> i) & 1] or el[:1]:
                plan.append((j, m, self.score(j, scores[len(plan)])))
        label = {ODD: " (invalid: vote not the signed one)", ODD + 1: " (invalid: bad signature)",
                 ODD + 2: " (invalid: unsigned items)", ODD + 3: " (invalid: signature without votes)"}.get(flaw, "")
        batch = self._batch(pid, plan, flaw)
        reasons = self.m.settle_batch(pid, batch.ins, batch.signers)
        self.act(f"settle_batch{label}", reasons, self.b.facet, "settle_batch", pid, self.m.pacts[pid].as_tuple(), 0,
                 batch.items, batch.sigs, sender=self.b.attacker)
        if not reasons:
            batch.record(self)

    def _batch(self, pid: int, plan: list[tuple[Job, Actor, int]], flaw: int = 0) -> Batch:
        """settle_batch's items and signatures for `plan` (job, member, score), each member's
        root over its votes in plan order and its deadline the latest of its jobs' (`flaw`: see
        settle_batch)."""
        t = self.m.pacts[pid]
        deadlines: dict[str, int] = {}
        for j, m, _ in plan:
            deadlines[m.address] = max(deadlines.get(m.address, 0), j.eval_deadline)
        out = Batch(leaves={a: [] for a in deadlines}, deadlines=deadlines)
        for j, m, s in plan:
            ev = keccak(f"evidence:{j.jid}:{m.address}:0".encode())
            signed = s + 1 if s < BPS else s - 1
            signed = signed if flaw == ODD and not out.items else s  # the first vote: signed with another score
            out.leaves[m.address].append(eip712.vote_struct_hash(Vote.model_construct(
                job_id=j.jid, deliverable_hash=j.deliverable, spec_hash=t.spec_hash, score_bps=signed,
                evidence_hash=ev, round=0, deadline=deadlines[m.address])))
            out.items.append((j.jid, m.address, s, ev))
            out.ins.append(BatchItemIn(j.jid, m.address, s, signed == s, ev))
        for a, ls in out.leaves.items():
            root = eip712.merkle_root(ls)
            sig = eip712.sign_digest(self.actor[a].key, eip712.digest(self.b.domain, eip712.batch_struct_hash(
                root, 0, deadlines[a])))
            ok = not (flaw == ODD + 1 and not out.sigs)
            if not ok:
                sig = bytes([sig[0] ^ 1]) + sig[1:]
            out.sigs.append((a, root, deadlines[a], sig))
            out.signers[a] = (deadlines[a], ok)
        if flaw == ODD + 2 and out.sigs:  # a member's items without its batch signature
            out.signers.pop(out.sigs.pop()[0])
        elif flaw == ODD + 3:  # a member signs a batch the call carries none of
            idle = next(e for e in self.evaluators if e.address not in out.leaves)
            root = keccak(b"votes not in this call")
            dl = max(deadlines.values(), default=self.m.now)
            sig = eip712.sign_digest(idle.key, eip712.digest(self.b.domain, eip712.batch_struct_hash(root, 0, dl)))
            out.sigs.append((idle.address, root, dl, sig))
            out.signers[idle.address] = (dl, True)
        return out

    @precondition(any_job)
    @rule(k=K, kind=st.integers(0, 4), via=st.integers(0, 2))
    @counted
    def stale_fields(self, k: int, kind: int, via: int) -> None:
        """A vote posted with job fields that are not the job's current ones (ADR 011): kind 0
        the fields from before its last transition (a client that missed a log), 1 one word
        changed, 2 another job's, 3 a job never opened, 4 (a batch) one job's fields left out.
        Refused with "escrow: stale job fields" (or "escrow: unknown job", "vote: job fields
        missing", and "escrow: wrong pact terms" for another job whose pact has other terms), and
        nothing moves: the word of the job stays as it was."""
        m = self.m
        via = via if via != 2 or has(CHALLENGED)(self) else 0
        states = (CHALLENGED,) if via == 2 else (SUBMITTED, VERDICT)
        ready = [j for j in m.jobs.values() if j.state in states and (self.eligible1(j) if via == 2 else self.eligible0(j))]
        j = ready[k % len(ready)] if ready else m.jobs[self.pick(states, k)]
        f = self.fields(j.jid)
        if kind == 0 and not self.history.get(j.jid):
            kind = 1
        if kind == 2 and len(m.jobs) < 2:
            kind = 1
        if kind == 4 and via != 1:
            kind = 0 if self.history.get(j.jid) else 1
        jid, want, what = j.jid, STALE, ["previous", "changed", "another job's", "unknown job", "missing"][kind]
        if kind == 0:
            stale = self.history[j.jid][-1]
        elif kind == 1:
            stale = [replace(f, money=f.money + 1), replace(f, r0=f.r0 ^ 1),
                     f.with_deadline(f.deadline, f.close_at ^ 1)][k % 3]
        elif kind == 2:
            stale = self.fields([x for x in m.jobs if x != j.jid][k % (len(m.jobs) - 1)])
            if m.pacts[stale.pact_id].as_tuple() != self.terms(j):
                # the fields name a pact whose terms the call's are not: the escrow reads the
                # terms as the wrong argument (ADR 012: the word covers the terms' hash)
                what = "another pact's job"
        else:
            stale = f
            if kind == 3:
                jid, want = m.job_count + 1 + k % 3, "escrow: unknown job"
        word = self.b.reader.job_word(j.jid)
        label = f"{('settle', 'settle_batch', 'appeal')[via]} (stale fields: {what})"
        refused = ["escrow: wrong pact terms"] if what == "another pact's job" else None
        if via == 1:
            el = self.eligible0(j) or [self.actor[m.versions[j.cv].members[i]] for i in sorted(j.reserved)]
            batch = self._batch(j.pact_id, [(j, el[0], self.score(j, -1))])
            items = [(jid, *it[1:]) for it in batch.items]
            runs = [] if kind == 4 else [stale.as_tuple()]
            if kind != 3:  # (the model knows no job it never opened)
                want = "vote: job fields missing" if kind == 4 else want
                reasons = m.settle_batch(j.pact_id, batch.ins, batch.signers, stale=frozenset({j.jid} if kind < 3 else ()),
                                         fields_given=len(runs))
                assert want in reasons, f"test bug: the model gives {reasons} for {label}"
            self.act(label, refused or [want], self.b.facet, "settle_batch", j.pact_id, self.terms(j), 0, items, batch.sigs,
                     sender=self.b.attacker, fields=runs)
        else:
            round_ = 1 if via == 2 else 0
            v = m.versions[j.av if round_ else j.cv]
            members = (self.eligible1(j) if round_ else self.eligible0(j)) or [self.actor[v.members[0]]]
            dl = j.deadline if round_ else j.eval_deadline
            vote = self.sign(members[0], j, self.score(j, -1), round_, dl, signed_job=jid)
            ins = [VoteIn(vote[0], vote[1], dl, evidence=vote[2])]
            reasons = m.appeal(j.jid, ins, fields_ok=False) if round_ else m.settle(j.jid, ins, fields_ok=False)
            assert reasons == [STALE], f"test bug: the model gives {reasons} for {label}"
            self.act(label, refused or [want], self.b.escrow, "appeal" if round_ else "settle", jid, self.terms(j), [vote],
                     sender=self.b.attacker, fields=stale.as_tuple() if kind != 3 else (0, 0, 0, bytes(32), 0))
        assert self.b.reader.job_word(j.jid) == word, f"job {j.jid}: a refused call changed its word"

    # -- challenge and appeal ---------------------------------------------------------------------------
    @precondition(reaches(VERDICT))
    @rule(k=K, stray=STRAY, who=st.integers(0, 9), flaw=FLAG, edge=EDGE)
    @counted
    def challenge(self, k: int, stray: int, who: int, flaw: int, edge: int) -> None:
        self.drive((VERDICT,), k)
        j = self.pick_ready((VERDICT,), lambda j: self.m.round0_closed(j) and self.m.now <= self._due(j), k, stray)
        if edge < 3 and j.state == VERDICT and not self.m.round0_closed(j) and self.m.now <= j.close_at:
            self.warp(j.close_at + 1 - self.m.now)  # round 0 closes by time; edge 3 keeps the early refusal
        j = self.to_edge(j, edge)
        sender = self.b.attacker if who == ODD else self.actor[j.buyer] if who % 2 else self.actor[j.agent]
        self._challenge(j, sender, flaw == ODD, flaw == ODD + 1)

    def _challenge(self, j: Job, sender: Actor, wrong: bool = False, bad_value: bool = False) -> None:
        t = self.m.pacts[j.pact_id]
        expected = (median_of(list(j.r0.values())) if j.r0 else 0) + (1 if wrong else 0)
        sent = t.challenge_bond + (1 if bad_value else 0)
        self.act("challenge", self.m.challenge(j.jid, sender.address, expected, sent), self.b.facet, "challenge",
                 j.jid, self.terms(j), expected, sender=sender, value=sent)

    @precondition(reaches(CHALLENGED))
    @rule(k=K, stray=STRAY, mask=st.integers(1, 7), scores=SCORES, flaw=st.integers(0, 11))
    @counted
    def appeal(self, k: int, stray: int, mask: int, scores: list[int], flaw: int) -> None:
        self.drive((CHALLENGED,), k, scores)
        self._appeal(self.m.jobs[self.pick((CHALLENGED,), k, stray)], mask, scores, flaw)

    def _appeal(self, j: Job, mask: int, scores: list[int], flaw: int = 0, quorum: bool = False) -> None:
        """Round-1 votes; with `quorum`, enough eligible members to reach the appeal threshold."""
        a = self.m.versions[j.av]
        members = self.eligible1(j) or [self.actor[a.members[i]] for i in sorted(a.accepted)]
        if not members:
            return
        chosen = [m for i, m in enumerate(members) if (mask >> i) & 1] or members[:1]
        if quorum:
            chosen += [m for m in members if m not in chosen][:max(0, a.threshold - len(j.r1) - len(chosen))]
        dl = j.deadline if j.state == CHALLENGED else self.m.now
        votes, ins = [], []
        for m, s in zip(chosen, self.scores(j, scores, len(chosen)), strict=True):
            votes.append(self.sign(m, j, s, 1, dl))
            ins.append(VoteIn(m.address, s, dl))
        label = "appeal"
        if flaw == ODD:  # a round-0 member is not an appeal member
            m = self.actor[self.m.versions[j.cv].members[min(j.reserved, default=0)]]
            votes[0], ins[0], label = self.sign(m, j, ins[0].score, 1, dl), VoteIn(m.address, ins[0].score, dl), \
                "appeal (invalid: non_member)"
        elif flaw == ODD + 1:
            votes[0] = (*votes[0][:4], bytes([votes[0][4][0] ^ 1]) + votes[0][4][1:])
            ins[0], label = VoteIn(ins[0].member, ins[0].score, dl, False), "appeal (invalid: bad signature)"
        elif flaw == ODD + 2:
            votes, ins, label = votes + votes[:1], ins + ins[:1], "appeal (invalid: duplicate)"
        elif flaw == ODD + 3:  # an accepted member whose stake outside pending withdrawal is below the bond
            md = self.m
            x = chosen[0].address
            free = md.ev_stake[x] - md.ev_reserved[x] - md.ev_pending[x]
            if md.ev_stake[x] - md.ev_pending[x] - free < a.bond and free:  # it asks to unstake all it can first
                self.act("request_unstake", md.request_unstake(x, free), self.b.escrow, "request_unstake", ETH, free,
                         sender=chosen[0])
            poor = [self.actor[x] for i, x in enumerate(a.members) if i in a.accepted
                    and md.ev_stake[x] - md.ev_pending[x] < a.bond]
            if poor:
                votes[0], ins[0] = self.sign(poor[0], j, ins[0].score, 1, dl), VoteIn(poor[0].address, ins[0].score, dl)
                label = "appeal (invalid: below bond)"
        self.act(label, self.m.appeal(j.jid, ins), self.b.facet, "appeal", j.jid, self.terms(j), votes,
                 sender=self.b.attacker)

    @precondition(reaches(CHALLENGED))
    @rule(k=K, stray=STRAY, edge=EDGE, ev=EVIDENCE)
    @counted
    def resolve(self, k: int, stray: int, edge: int, ev: int) -> None:
        self.drive((CHALLENGED,), k)
        j = self.pick_ready((CHALLENGED,), lambda j: self.m.now > j.deadline or self._resolvable(j), k, stray)
        self._resolve(self.to_edge(j, edge), ev)

    def _resolve(self, j: Job, ev: int = 0) -> None:
        label, evidence, e = self.evidence(j, ev)
        reasons = self.m.resolve(j.jid, e)
        self.act(f"resolve{label}", reasons, self.b.facet, "resolve", j.jid, self.terms(j), evidence,
                 sender=self.b.attacker)
        self._note_evidence(reasons, evidence)

    # -- admin, committees, time -----------------------------------------------------------------------
    @rule(kind=st.integers(0, 3), flag=FLAG, which=st.integers(0, 1), mask=st.integers(0, 15),
          threshold=st.integers(0, 4), terms=st.integers(0, 4), accept_now=st.booleans(), k=K)
    @counted
    def governance(self, kind: int, flag: int, which: int, mask: int, threshold: int, terms: int,
                   accept_now: bool, k: int) -> None:
        """set_paused (the guardian), propose_version (the committee admin: a rotation that takes
        effect after the delay, once members accept), accept_version, revoke_key (self-revocation,
        within the sequence's budget)."""
        if kind == 2 and self._unaccepted():
            self._accept_version(k, flag)
        elif kind == 3 and self.revocations < self.revoke_budget:
            self._revoke_key(k, flag)
        elif kind == 1:
            self._rotate(which, mask, threshold, terms, flag, accept_now)
        else:
            sender = self.b.attacker if flag == ODD else self.b.guardian
            on = which == 1 and not self.m.paused
            self.act("set_paused", self.m.set_paused(sender.address, on), self.b.registry, "set_paused", on,
                     sender=sender)

    def _rotate(self, which: int, mask: int, threshold: int, terms: int, flag: int, accept_now: bool) -> None:
        pool, other = (self.b.pool, self.b.appeal_pool) if which == 0 else (self.b.appeal_pool, self.b.pool)
        members = [pool[i].address for i in range(len(pool)) if (mask >> i) & 1]
        if flag == ODD + 1:  # a member of the other committee: opens refuse overlapping versions
            members.append(other[0].address)
        bond, penalty = [(EV_BOND, EV_PENALTY), (2 * EV_BOND, EV_PENALTY), (EV_BOND, EV_PENALTY // 2),
                         (EV_BOND, 0), (EV_PENALTY, EV_BOND)][terms]
        sender = self.b.attacker if flag == ODD else self.b.admin
        cid = (self.b.committee_id, self.b.appeal_committee_id)[which]
        reasons = self.m.propose_version(sender.address, cid, members, threshold, bond, penalty)
        out = self.act("propose_version", reasons, self.b.registry, "propose_version", cid, members, threshold, bond,
                       penalty, sender=sender)
        if not reasons:
            assert int.from_bytes(out, "big") == self.m.version_count
            if accept_now:
                for x in members:
                    self.act("accept_version", self.m.accept_version(x, self.m.version_count), self.b.registry,
                             "accept_version", self.m.version_count, sender=self.actor[x])

    def _unaccepted(self) -> list[tuple[int, str]]:
        live = {c.current for c in self.m.committees.values()} | {c.pending for c in self.m.committees.values()}
        return [(vid, m) for vid in sorted(live - {0}) for i, m in enumerate(self.m.versions[vid].members)
                if i not in self.m.versions[vid].accepted]

    def _accept_version(self, k: int, flag: int) -> None:
        pairs = self._unaccepted()
        vid, member = pairs[k % len(pairs)]
        if flag == ODD:  # accepting twice, or a version one is not listed in
            vid = self.m.current_version(self.b.committee_id)
            member = self.evaluators[k % len(self.evaluators)].address
        self.act("accept_version", self.m.accept_version(member, vid), self.b.registry, "accept_version", vid,
                 sender=self.actor[member])

    def _revoke_key(self, k: int, flag: int) -> None:
        keys = [e for e in self.evaluators if e.address not in self.m.revoked]
        e = keys[k % len(keys)] if keys and flag != ODD else self.evaluators[k % len(self.evaluators)]
        in_round = [self.eligible0(j) for j in self.m.jobs.values() if j.state == SUBMITTED and self.eligible0(j)]
        if in_round and flag < ODD:  # a member yet to vote on the first job in evaluation
            e = in_round[0][k % len(in_round[0])]
        reasons = self.m.revoke_key(e.address)
        self.revocations += not reasons
        self.act("revoke_key", reasons, self.b.registry, "revoke_key", sender=e)

    def _resolvable(self, j: Job) -> bool:
        """Early resolve: every active appeal member voted and the appeal threshold is met."""
        return len(j.r1) >= self.m.versions[j.av].threshold and self.m.active(j.av) <= j.r1.keys()

    def _due(self, j: Job) -> int:
        """The next time at which the job's state lets something new happen."""
        t = self.m.pacts[j.pact_id]
        if j.state == VERDICT:
            return j.close_at + t.challenge_window if self.m.round0_closed(j) else j.close_at
        return j.deadline

    @rule(kind=st.integers(0, 11), small=st.integers(1, 900), k=K, plus=st.integers(0, 1))
    @counted
    def time_warp(self, kind: int, small: int, k: int, plus: int) -> None:
        """Time passes: a few seconds to minutes, a window-sized jump (up to the evaluator
        cooldown), or exactly to a live job's next deadline, or one second past it."""
        live = [j for j in self.m.jobs.values() if j.state in LIVE]
        if kind >= 10 and live:
            target = self._due(live[k % len(live)]) + plus
            if target > self.m.now:
                self.warp(target - self.m.now)
        elif 4 <= kind < 10:
            self.warp(WARPS[kind - 4])
        else:
            self.warp(small)

    # -- a job one stage on, so that sequences reach deep states -----------------------------------------
    @rule(k=K, scores=SCORES, mask=st.integers(1, 7), choice=st.integers(0, 3), pid=st.integers(1, 3),
          value=SMALL_VALUE)
    @counted
    def advance(self, k: int, scores: list[int], mask: int, choice: int, pid: int, value: int) -> None:
        self._advance(k, scores, mask, choice, pid, value)

    @rule(k=K, scores=SCORES, mask=st.integers(1, 7), choice=st.integers(0, 3), pid=st.integers(1, 3),
          value=SMALL_VALUE)
    @counted
    def advance_2(self, k: int, scores: list[int], mask: int, choice: int, pid: int, value: int) -> None:
        """`advance` again: hypothesis picks among enabled rules uniformly, and (swarm testing)
        disables a random subset per sequence; copies give the lifecycle more of the steps."""
        self._advance(k, scores, mask, choice, pid, value)

    @rule(k=K, scores=SCORES, mask=st.integers(1, 7), choice=st.integers(0, 3), pid=st.integers(1, 3),
          value=SMALL_VALUE)
    @counted
    def advance_3(self, k: int, scores: list[int], mask: int, choice: int, pid: int, value: int) -> None:
        self._advance(k, scores, mask, choice, pid, value)

    def _advance(self, k: int, scores: list[int], mask: int, choice: int, pid: int, value: int) -> None:
        """Open a job when none is live short of a verdict, else move a live job one stage on:
        mostly the most advanced one short of a verdict, so that jobs in VERDICT and CHALLENGED
        wait there for the rules made for them (finalize, challenge, add_votes, appeal,
        resolve); now and then (choice 3) any live job, those included."""
        m = self.m
        live = [jid for jid, j in m.jobs.items() if j.state in LIVE]
        pool = live if choice == 3 else [jid for jid in live if m.jobs[jid].state < VERDICT]
        if not pool or (choice == 3 and k % 4 == 0):
            self._open_new(k, choice, pid, value)
            return
        # mostly the most advanced job short of a verdict, so that sequences reach the deep states
        j = m.jobs[pool[k % len(pool)]] if k % 4 == 3 else max((m.jobs[i] for i in pool), key=lambda x: x.state)
        self._move(j, scores, mask, choice)

    def _open_new(self, k: int, choice: int, pid: int, value: int) -> None:
        """Open a job (choice < 3: after the members top their stake up to what it will
        reserve of them), mostly for one agent, so that its history under a pact (cap raised,
        then reset) builds up."""
        b, m = self.b, self.m
        if choice < 3:
            v = m.versions[m.current_version(m.pacts[pid].committee_id)]
            for i in sorted(m.active(v.vid)):
                x = v.members[i]
                free = m.ev_stake[x] - m.ev_pending[x]
                short = max(v.bond - free, v.penalty - (free - m.ev_reserved[x]), 0)
                if short:
                    self.act("stake (evaluator)", m.stake(x, short, True), b.escrow, "stake", ETH, short, True,
                             sender=self.actor[x], value=short)
        self._open(b.buyers[k % 3], b.agents[(k // 3) % 3 if choice == 2 else 0], pid, value)

    def drive(self, states: tuple[int, ...], k: int, scores: list[int] | None = None, mask: int | None = None) -> None:
        """For a rule made for jobs in `states`: unless one is there, move the most advanced live
        job short of them on (as `advance` does, each call held to the model; a new job when
        none is live short of them) until one is, at most eight moves; the rule then acts.
        Without this, sequences seldom sit in the states a rule needs while others fill up,
        and some rules would run in well under 1 % of steps."""
        for n in range(8):
            if any(j.state in states for j in self.m.jobs.values()):
                return
            live = [j for j in self.m.jobs.values() if j.state in LIVE and j.state < max(states)]
            if live:
                # without the rule's own scores, spread ones from k (drawing more would fill
                # hypothesis's choice buffer and cut sequences short of their steps)
                spread = [(k * 2_654_435_761 + n * 40_503 + i * 9_973) % (BPS + 1) for i in range(3)]
                self._move(max(live, key=lambda x: x.state), scores or spread, mask or 1 + (k + n) % 7, choice=0)
            else:
                if self.m.paused:
                    self.act("set_paused", self.m.set_paused(self.b.guardian.address, False), self.b.registry,
                             "set_paused", False, sender=self.b.guardian)
                count = self.m.job_count
                self._open_new(k + n, 0, 1 + (k + n) % 3, 10**15 + k)
                if self.m.job_count == count:  # refused (say, a committee short of quorum): no retry
                    return

    def _move(self, j: Job, scores: list[int], mask: int, choice: int) -> None:
        """One stage on for job j: accept (after topping up the agent's stake), submit, round-0
        votes, a challenge (choice 0: the buyer, 1: the agent) or finalize, appeal votes and
        resolve; past a deadline, cancel or expire."""
        b, m = self.b, self.m
        t = m.pacts[j.pact_id]
        if j.state == OPEN and (m.now > j.deadline or m.exposure[(j.agent, j.pact_id)] + j.value > m.cap(j.agent, j.pact_id)):
            sender = b.attacker if m.now > j.deadline else self.actor[j.buyer]  # anyone after A; the buyer before
            self.act("cancel", m.cancel(j.jid, sender.address), b.facet, "cancel", j.jid, self.terms(j), sender=sender)
        elif j.state == OPEN:
            if m.paused:
                self.act("set_paused", m.set_paused(b.guardian.address, False), b.registry, "set_paused", False,
                         sender=b.guardian)
            short = bond_of(t, j.value) - m.agent_free[j.agent]
            if short > 0:
                self.act("stake (agent)", m.stake(j.agent, short, False), b.escrow, "stake", ETH, short, False,
                         sender=self.actor[j.agent], value=short)
            self.act("accept", m.accept(j.jid, j.agent), b.escrow, "accept", j.jid, self.terms(j),
                     sender=self.actor[j.agent])
        elif j.state == ACCEPTED and m.now > j.deadline:
            self.act("expire", m.expire(j.jid), b.facet, "expire", j.jid, self.terms(j), sender=b.attacker)
        elif j.state == ACCEPTED:
            self._submit(j)
        elif j.state == SUBMITTED:
            if self.eligible0(j) and m.now <= j.eval_deadline and not j.closed_early:
                self._round0("settle", j, mask, scores)
            else:
                if m.now <= j.eval_deadline:
                    self.warp(j.eval_deadline + 1 - m.now)
                self.act("expire", m.expire(j.jid), b.facet, "expire", j.jid, self.terms(j), sender=b.attacker)
        elif j.state == VERDICT:
            if t.challenge_window and choice < 2 and m.now <= self._due(j):
                if not m.round0_closed(j):
                    self.warp(j.close_at + 1 - m.now)
                self._challenge(j, self.actor[j.buyer if choice == 0 else j.agent])
            else:
                if m.now <= self._due(j):
                    self.warp(self._due(j) + 1 - m.now)
                if j.state == VERDICT and m.now <= self._due(j):  # round 0 closed at E: C lies ahead
                    self.warp(self._due(j) + 1 - m.now)
                self._finalize(j)
        elif j.state == CHALLENGED:
            if self.eligible1(j) and m.now <= j.deadline:
                self._appeal(j, mask, scores, quorum=choice < 3)
            if m.now <= j.deadline and choice < 3 and not self._resolvable(j):
                self.warp(j.deadline + 1 - m.now)
            self._resolve(j)

    # -- invariants ------------------------------------------------------------------------------------------
    @invariant()
    def ledgers_equal_the_model(self) -> None:
        b, m, rd = self.b, self.m, self.b.reader
        self.steps += 1
        HITS.setdefault(type(self).__name__, Counter())["(steps checked)"] += 1
        if self.steps % 10 == 0:
            self._check_views()
        assert boa.env.evm.patch.timestamp == m.now
        balance = boa.env.get_balance(b.escrow.address)
        assert balance == m.total(), f"escrow holds {balance}, the model's total is {m.total()} ({balance - m.total():+})"
        locked, reserved = m.locked_from_jobs(), m.reserved_from_jobs()
        for a in b.tracked:
            x = a.address
            for ledger in (m.agent_free, m.agent_locked, m.ev_stake, m.ev_reserved, m.ev_pending, m.credits):
                assert ledger[x] >= 0, f"{a.name}: negative ledger in the model"
            assert rd.agent_stake(x) == (m.agent_free[x], m.agent_locked[x]), f"{a.name}: agent stake (free, locked)"
            assert m.agent_locked[x] == locked[x], f"{a.name}: locked != bonds of accepted live jobs"
            ev = rd.evaluator_stake(x)
            assert ev == (m.ev_stake[x], m.ev_reserved[x], m.ev_pending[x], m.ev_unlock[x]), \
                f"{a.name}: evaluator stake (stake, reserved, pending, unlock)"
            assert ev[1] == reserved[x], f"{a.name}: reserved != penalties of live jobs reserving it"
            assert ev[1] + ev[2] <= ev[0], f"{a.name}: reserved + pending above stake"
            assert rd.credits(x) == m.credits[x], f"{a.name}: credits"
        assert rd.burned() == m.burned, "burned"
        exposure = m.exposure_from_jobs()
        for a in b.agents:
            x = a.address
            assert rd.agent_counts(x) == [m.agent_counts[(x, i)] for i in range(8)], f"{a.name}: counters"
            assert rd.agent_money(x) == (m.agent_money[(x, 0)], m.agent_money[(x, 1)]), f"{a.name}: released, slashed"
            for pid in m.pacts:
                assert m.exposure[(x, pid)] == exposure[(x, pid)], f"{a.name}: open value != live accepted jobs"
                assert rd.exposure(x, pid) == (m.exposure[(x, pid)], m.bonus[(x, pid)]), f"{a.name}: exposure {pid}"
        for pid in m.pacts:
            assert rd.pact_counts(pid) == [m.pact_counts[(pid, i)] for i in range(8)], f"pact {pid}: counters"
            assert rd.pact_money(pid) == (m.pact_money[(pid, 0)], m.pact_money[(pid, 1)]), f"pact {pid}: money"
        for jid, j in m.jobs.items():
            f = self.fields(jid)
            state = rd.job_state(jid, f, self.threshold(f.committee_version))
            assert state == j.state, f"job {jid}: chain {STATE_NAMES.get(state)}, model {STATE_NAMES[j.state]}"
            if jid in self.terminal_seen:
                assert state == self.terminal_seen[jid], f"job {jid}: a terminal state changed"
                continue
            if state in TERMINAL:
                self.terminal_seen[jid] = state
            self._check_job(j)

    def _check_registry(self) -> None:
        """The registry holds no money and its state drives every prediction (a wrong version
        or revocation shows up as a refused call): its views are read every tenth step."""
        r, m = self.b.registry, self.m
        assert r.paused() == m.paused
        for e in self.evaluators:
            assert r.revoked(e.address) == (e.address in m.revoked), f"{e.name}: revoked"
        for vid, v in m.versions.items():
            assert r.accepted_mask(vid) == sum(1 << i for i in v.accepted), f"version {vid}: accepted"
        for cid, c in m.committees.items():
            assert r.current_version(cid) == m.current_version(cid), f"committee {cid}: current version"
            assert r.pending_version(cid) == (c.pending, c.effective_at), f"committee {cid}: pending version"

    def _check_job(self, j: Job) -> None:
        f = self.fields(j.jid)
        c = self.b.reader.job(j.jid, f, self.threshold(f.committee_version))
        want = dict(
            buyer=int(j.buyer, 16), state=j.state, by_agent=j.challenger == j.agent, pact_id=j.pact_id, cv=j.cv,
            av=j.av, agent=int(j.agent, 16), reserved=sum(1 << i for i in j.reserved), deadline=j.deadline,
            close_at=j.close_at, value=j.value, fee=j.fee, deliverable=j.deliverable or bytes(32), r0=j.r0, r1=j.r1)
        assert c == want, f"job {j.jid}: chain {c} != model {want}"


def _hand(t: PactTerms, value: int, score: int, voters: int) -> tuple[int, ...]:
    s = money.settle(t, value, score, voters)
    return s.to_agent, s.to_buyer, s.fee_each, s.slashed, s.to_insurance, s.burned, s.bond_returned


def _base_terms(**over: Any) -> PactTerms:
    base: dict[str, Any] = dict(
        asset=ETH, committee_id=1, appeal_committee_id=2, spec_hash=keccak(b"spec:v1"), fail_below_bps=5000,
        pass_at_bps=8000, bond_bps=2000, bond_cap=10 * E18, slash_bps=5000, slash_buyer_bps=5000,
        slash_insurance_bps=3000, slash_burn_bps=2000, insurance=INSURANCE, shadow=False,
        evaluator_fee=E18 // 100, challenge_bond=E18 // 10, appeal_fee=3 * E18 // 100, min_appeal_delta_bps=1000,
        min_expansion_value=0, accept_window=HOUR, work_window=DAY, eval_window=HOUR, challenge_window=HOUR,
        appeal_window=HOUR, silence_release=False, cap_initial=2 * E18, cap_step=E18, cap_max=5 * E18)
    base.update(over)
    return PactTerms(**base)


class FixedMix(MoneyMachine):
    """Three pacts with set terms: a shadow pact, a pact without challenges (settles on the
    closing vote), and one that releases to the agent on evaluator silence."""

    @initialize(budget=st.integers(0, 4), stakes=st.lists(st.sampled_from([0, E18, 5 * E18]), min_size=3, max_size=3))
    def pacts(self, budget: int, stakes: list[int]) -> None:
        self.setup_world([
            _base_terms(shadow=True, bond_bps=0, slash_bps=0),
            _base_terms(challenge_window=0, appeal_window=0),
            _base_terms(silence_release=True, min_expansion_value=E18 // 2),
        ], budget, stakes)


@st.composite
def random_terms(draw: Any, kind: str) -> PactTerms:
    shadow, instant = kind == "shadow", kind == "instant"
    fail_below = draw(st.integers(0, BPS))
    bond = draw(st.sampled_from([(0, 0), (1, 1), (2000, 5000), (5000, 3333), (BPS, BPS)]))
    shares = draw(st.sampled_from([(BPS, 0, 0), (5000, 3000, 2000), (0, 0, BPS), (3333, 3333, 3334), (1, 9999, 0)]))
    challenge_bond = draw(st.sampled_from([1, 3, 1001, E18 // 10]))
    cap_initial = draw(st.sampled_from([E18 // 2, 2 * E18]))
    window = st.sampled_from([1, 60, HOUR])
    return _base_terms(
        fail_below_bps=fail_below, pass_at_bps=draw(st.integers(fail_below, BPS)),
        bond_bps=0 if shadow else bond[0], bond_cap=draw(st.sampled_from([1, E18 // 10, 10 * E18])),
        slash_bps=0 if shadow else bond[1], slash_buyer_bps=shares[0], slash_insurance_bps=shares[1],
        slash_burn_bps=shares[2], shadow=shadow, evaluator_fee=draw(st.sampled_from([0, 1, 7, E18 // 100])),
        challenge_bond=challenge_bond, appeal_fee=draw(st.sampled_from([0, 1, challenge_bond // 3, challenge_bond])),
        min_appeal_delta_bps=draw(st.sampled_from([1, 1000, 5000, BPS])),
        min_expansion_value=draw(st.sampled_from([0, E18 // 2])), accept_window=draw(window),
        work_window=draw(window), eval_window=draw(window), challenge_window=0 if instant else draw(window),
        appeal_window=draw(window), silence_release=kind == "release" or (instant and draw(st.booleans())),
        cap_initial=cap_initial, cap_step=draw(st.sampled_from([E18, 1, 0])),
        cap_max=draw(st.sampled_from([6 * E18, cap_initial])),
        spec_hash=keccak(f"spec:{kind}".encode()))


class RandomMix(MoneyMachine):
    """The same three kinds of pact, with every term drawn per sequence."""

    @initialize(shadow=random_terms("shadow"), instant=random_terms("instant"), release=random_terms("release"),
                budget=st.integers(0, 4),
                stakes=st.lists(st.sampled_from([0, E18, 5 * E18]), min_size=3, max_size=3))
    def pacts(self, shadow: PactTerms, instant: PactTerms, release: PactTerms, budget: int, stakes: list[int]) -> None:
        self.setup_world([shadow, instant, release], budget, stakes)


# PACTBOND_FUZZ_SHRINK=0: report the first failing sequence as found (scripts/mutants.py: a
# planted bug only needs to be caught, and shrinking a 50-step sequence can take minutes)
PHASES = tuple(Phase) if os.environ.get("PACTBOND_FUZZ_SHRINK", "1") != "0" else \
    (Phase.explicit, Phase.reuse, Phase.generate)
SETTINGS = settings(
    max_examples=max(1, EXAMPLES // 2), stateful_step_count=STEPS, deadline=None, derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True,
    phases=PHASES)


@pytest.fixture(scope="module", autouse=True)
def _fuzz_world(fuzz_base: FuzzBase):
    """Bind the machines to this module's deployment; print the seed; with
    PACTBOND_FUZZ_REPORT=<file>, append every call's outcome count to that file."""
    MoneyMachine.base = fuzz_base
    print(f"pactbond fuzz seed {SEED} (replay: PACTBOND_FUZZ_SEED={SEED}); "
          f"{SETTINGS.max_examples} sequences x {STEPS} steps per machine")
    yield
    if REPORT:
        with open(REPORT, "a") as f:
            for machine, hits in sorted(HITS.items()):
                f.write(f"{machine} (seed {SEED}, {SETTINGS.max_examples} x {STEPS}):\n")
                f.writelines(f"  {hits[f'rule {r}']:7d}  rule {r}\n" for r in RULES)
                f.writelines(f"  {n:7d}  {outcome}\n" for outcome, n in sorted(hits.items())
                             if not outcome.startswith("rule "))


# The fuzz tests are hypothesis's own state-machine runners (so --hypothesis-show-statistics
# reports them); the seed is the run's, printed above and noted on a failure. They are defined
# apart (first and third), so that pytest-xdist's first batches (two consecutive tests per
# worker) put them on different workers.
# _min_steps: every sequence runs all STEPS steps. Without it hypothesis ends a sequence once its
# choice buffer is 80 % full (a mean of 72 of 100 steps here); with it, a sequence that would
# overrun the buffer is discarded as invalid instead (its steps still ran, with every check).
test_money_invariants__fixed_pact_mix__ledgers_equal_model = get_state_machine_test(
    seed(SEED)(FixedMix), settings=SETTINGS, _min_steps=STEPS)


# -- the model's arithmetic against hand-computed expectations -------------------------------------------

def test_model_settle__partial_score__splits_value_and_fee_by_hand():
    t = _base_terms()
    # pay(6500) = 10000 * 1500 / 3000 = 5000 bps: half of 1 ETH to the agent; fee 0.01 ETH over 3
    # voters: 3333333333333333 each, 1 wei to the buyer; partial: no slash, bond 0.2 ETH back
    assert pay_of(t, 6500) == 5000
    assert _hand(t, E18, 6500, 3) == (E18 // 2, E18 // 2 + 1, 3333333333333333, 0, 0, 0, E18 // 5)


test_money_invariants__random_pact_terms__ledgers_equal_model = get_state_machine_test(
    seed(SEED)(RandomMix), settings=SETTINGS, _min_steps=STEPS)


def test_model_slash__seven_wei_fail__rounds_bond_and_slash_up():
    t = _base_terms()
    # bond = ceil(7 * 2000 / 10000) = 2; slash = ceil(2 * 5000 / 10000) = 1; shares floor to 0
    # insurance and 0 burned, so the buyer gets the 1 wei; fee 0.01 ETH over 2 voters
    assert (bond_of(t, 7), slash_of(t, 7)) == (2, 1)
    assert _hand(t, 7, 4999, 2) == (0, 7 + 1, E18 // 200, 1, 0, 0, 1)


def test_model_appeal__overturn_to_fail__penalizes_generous_voters():
    t = _base_terms()
    # s0 = median(9000, 8500, 4000) = 8500 (pay 10000); s1 = median(3000, 2000) = 2500 (pay 0):
    # overturned for the buyer; voters with pay >= 0 + 1000 (the 9000 and 8500) lose their penalty
    a = money.appeal(t, 8500, [9000, 8500, 4000], [3000, 2000], 2, "buyer")
    assert (a.overturned, a.challenger_won, a.final_score, a.penalized) == (True, True, 2500, [0, 1])
    # appeal fee 0.03 ETH over 2 voters, the rest of the 0.1 ETH bond back to the winner
    assert (a.fee_each, a.to_challenger, a.to_other, a.burned) == (15 * E18 // 1000, 7 * E18 // 100, 0, 0)
    assert median_of([9000, 8500, 4000]) == 8500 and median_of([3000, 2000]) == 2500

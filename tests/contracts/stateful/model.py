"""An independent Python model of pactbond's money, for the stateful fuzz (RELIABILITY.md C3).

It implements DESIGN.md's protocol rules (with the choices written in docs/adr/) without reading
the chain: each call is predicted as accepted or refused, a refusal with the set of revert
reasons that apply (the contract must give one of them), and an accepted call moves the
model's ledgers. Arithmetic is written out here; `pactbond.money` is cross-checked against it
at every settlement and appeal.

ADR 011: every job call carries the job's fields; the model is told whether they are the
current ones (`fields_ok`), and stale fields refuse the call before any other job check.
VERDICT is a state of the model; the chain derives it (stored SUBMITTED, votes >= threshold).
Each settlement's Feedback (score, evidence hash) is predicted in `feedback`: the evidence of
the settling call's first vote of the job, or the Evidence argument of finalize and resolve.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pactbond import money
from pactbond.models import PactTerms

BPS = 10_000
OPEN, ACCEPTED, SUBMITTED, VERDICT, CHALLENGED = 1, 2, 3, 4, 5
SETTLED, CANCELLED, EXPIRED_NO_DELIVERY, EXPIRED_NO_VERDICT = 6, 7, 8, 9
TERMINAL = frozenset({SETTLED, CANCELLED, EXPIRED_NO_DELIVERY, EXPIRED_NO_VERDICT})
ZERO32 = bytes(32)
STALE = "escrow: stale job fields"
MAX_CALL_VOTES = 4  # votes a settle or appeal call takes (escrow_core.MAX_CALL_VOTES)
OVER_BOUND = "<revert 0x>"  # more votes than the argument's bound: the ABI decoder reverts bare
STATE_NAMES = {1: "OPEN", 2: "ACCEPTED", 3: "SUBMITTED", 4: "VERDICT", 5: "CHALLENGED",
               6: "SETTLED", 7: "CANCELLED", 8: "EXPIRED_NO_DELIVERY", 9: "EXPIRED_NO_VERDICT"}

# reputation counter lanes (docs/protocol.md "Reputation")
LANE_SETTLED, LANE_PASSED, LANE_PARTIAL, LANE_FAILED = 0, 1, 2, 3
LANE_NO_DELIVERY, LANE_NO_VERDICT, LANE_CHALLENGES, LANE_SEVENTH = 4, 5, 6, 7


# -- arithmetic of DESIGN "Money of one job" and "Bands and pay", written out -------------------

def ceil_div(a: int, b: int) -> int:
    return (a + b - 1) // b


def bond_of(t: PactTerms, value: int) -> int:
    return min(t.bond_cap, ceil_div(value * t.bond_bps, BPS))


def slash_of(t: PactTerms, value: int) -> int:
    return ceil_div(bond_of(t, value) * t.slash_bps, BPS)


def pay_of(t: PactTerms, score: int) -> int:
    if score >= t.pass_at_bps:
        return BPS
    if score < t.fail_below_bps:
        return 0
    return BPS * (score - t.fail_below_bps) // (t.pass_at_bps - t.fail_below_bps)


def band_of(t: PactTerms, score: int) -> int:
    if score >= t.pass_at_bps:
        return LANE_PASSED
    if score < t.fail_below_bps:
        return LANE_FAILED
    return LANE_PARTIAL


def median_of(scores: list[int]) -> int:
    xs = sorted(scores)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) // 2


# -- objects ------------------------------------------------------------------------------------

@dataclass
class Version:
    vid: int
    cid: int
    members: list[str]
    threshold: int
    bond: int
    penalty: int
    accepted: set[int] = field(default_factory=set)

    def index(self, who: str) -> int | None:
        return self.members.index(who) if who in self.members else None


@dataclass
class Committee:
    cid: int
    admin: str
    delay: int
    current: int
    pending: int = 0
    effective_at: int = 0


@dataclass
class Job:
    jid: int
    pact_id: int
    buyer: str
    agent: str
    value: int
    fee: int
    cv: int
    av: int
    reserved: frozenset[int]  # member indices of version cv reserved at open
    state: int = OPEN
    deadline: int = 0  # the job's current deadline: A (OPEN), W (ACCEPTED), E (SUBMITTED, VERDICT), P (CHALLENGED)
    eval_deadline: int = 0  # E
    close_at: int = 0  # round-0 close: E, or the time of the vote that closed it early
    deliverable: bytes = b""
    bond: int = 0
    r0: dict[int, int] = field(default_factory=dict)  # member index -> score
    r1: dict[int, int] = field(default_factory=dict)
    challenger: str | None = None

    @property
    def closed_early(self) -> bool:
        return self.state in (SUBMITTED, VERDICT, CHALLENGED) and self.close_at < self.eval_deadline


@dataclass(frozen=True)
class VoteIn:
    """A vote as posted: the model is told whether its signature is the member's over this vote."""

    member: str
    score: int
    deadline: int
    sig_ok: bool = True
    evidence: bytes = ZERO32


@dataclass(frozen=True)
class BatchItemIn:
    """A batch item; `signed_ok`: the member's signed batch holds this very vote (else the
    root rebuilt from the call differs from the signed one)."""

    jid: int
    member: str
    score: int
    signed_ok: bool = True
    evidence: bytes = ZERO32


@dataclass(frozen=True)
class EvidenceIn:
    """finalize's and resolve's Evidence argument: a round-0 vote of `member` with `score`,
    whose signature (single or batch leaf) is the member's when `sig_ok`."""

    member: str
    score: int
    evidence: bytes
    sig_ok: bool = True


class Model:
    """The money and the rules, per DESIGN.md. Methods return the revert reasons that apply
    (empty: accepted, and the effects are applied)."""

    def __init__(self, now: int, cooldown: int, guardian: str, owner: str):
        self.now = now
        self.cooldown = cooldown
        self.guardian, self.owner = guardian, owner
        self.paused = False
        self.agent_free: Counter[str] = Counter()
        self.agent_locked: Counter[str] = Counter()
        self.ev_stake: Counter[str] = Counter()
        self.ev_reserved: Counter[str] = Counter()
        self.ev_pending: Counter[str] = Counter()
        self.ev_unlock: Counter[str] = Counter()
        self.credits: Counter[str] = Counter()
        self.burned = 0
        self.exposure: Counter[tuple[str, int]] = Counter()  # (agent, pact) -> open value
        self.bonus: Counter[tuple[str, int]] = Counter()  # (agent, pact) -> cap bonus
        self.agent_counts: Counter[tuple[str, int]] = Counter()
        self.pact_counts: Counter[tuple[int, int]] = Counter()
        self.agent_money: Counter[tuple[str, int]] = Counter()  # (agent, 0 released | 1 slashed)
        self.pact_money: Counter[tuple[int, int]] = Counter()
        self.pacts: dict[int, PactTerms] = {}
        self.committees: dict[int, Committee] = {}
        self.versions: dict[int, Version] = {}
        self.revoked: set[str] = set()
        self.jobs: dict[int, Job] = {}
        self.job_count = 0
        self.pact_count = 0
        self.version_count = 0
        self.settlements = 0  # cross-checks of pactbond.money done
        self.paths: list[str] = []  # the money paths the last call took (for coverage events)
        self.feedback: list[tuple[int, int, bytes]] = []  # the last call's Feedback (job, score, evidence)

    # -- totals and derived ledgers -------------------------------------------------------------
    def total(self) -> int:
        """What the escrow must hold: DESIGN "Money invariants", first bullet."""
        escrow = sum(j.value + j.fee for j in self.jobs.values() if j.state not in TERMINAL)
        bonds = sum(self.pacts[j.pact_id].challenge_bond for j in self.jobs.values() if j.state == CHALLENGED)
        return (sum(self.agent_free.values()) + sum(self.agent_locked.values()) + sum(self.ev_stake.values())
                + escrow + sum(self.credits.values()) + bonds + self.burned)

    def locked_from_jobs(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for j in self.jobs.values():
            if j.state in (ACCEPTED, SUBMITTED, VERDICT, CHALLENGED):
                out[j.agent] += j.bond
        return out

    def reserved_from_jobs(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for j in self.jobs.values():
            if j.state not in TERMINAL:
                v = self.versions[j.cv]
                for i in j.reserved:
                    out[v.members[i]] += v.penalty
        return out

    def exposure_from_jobs(self) -> Counter[tuple[str, int]]:
        out: Counter[tuple[str, int]] = Counter()
        for j in self.jobs.values():
            if j.state in (ACCEPTED, SUBMITTED, VERDICT, CHALLENGED):
                out[(j.agent, j.pact_id)] += j.value
        return out

    def cap(self, agent: str, pid: int) -> int:
        t = self.pacts[pid]
        return min(t.cap_initial + self.bonus[(agent, pid)], t.cap_max)

    # -- registry ---------------------------------------------------------------------------------
    def current_version(self, cid: int) -> int:
        c = self.committees[cid]
        if c.pending and self.now >= c.effective_at:
            return c.pending
        return c.current

    def active(self, vid: int) -> set[int]:
        v = self.versions[vid]
        return {i for i in v.accepted if v.members[i] not in self.revoked}

    def _new_version(self, cid: int, members: list[str], threshold: int, bond: int, penalty: int) -> int:
        self.version_count += 1
        self.versions[self.version_count] = Version(self.version_count, cid, list(members), threshold, bond, penalty)
        return self.version_count

    def setup_committee(self, admin: str, delay: int, members: list[str], threshold: int, bond: int,
                        penalty: int) -> int:
        """A committee created (and accepted by its members) before the fuzz starts."""
        cid = len(self.committees) + 1
        vid = self._new_version(cid, members, threshold, bond, penalty)
        self.versions[vid].accepted = set(range(len(members)))
        self.committees[cid] = Committee(cid, admin, delay, vid)
        return cid

    def propose_version(self, sender: str, cid: int, members: list[str], threshold: int, bond: int,
                        penalty: int) -> list[str]:
        r = []
        if self.committees[cid].admin != sender:
            r.append("committee: not admin")
        if not 1 <= threshold <= len(members):
            r.append("committee: threshold out of range")
        if penalty > bond:
            r.append("committee: penalty above bond")
        if len(set(members)) != len(members):
            r.append("committee: duplicate member")
        if r:
            return r
        c = self.committees[cid]
        current = self.current_version(cid)
        vid = self._new_version(cid, members, threshold, bond, penalty)
        c.current, c.pending, c.effective_at = current, vid, self.now + c.delay
        return []

    def accept_version(self, sender: str, vid: int) -> list[str]:
        v = self.versions[vid]
        i = v.index(sender)
        if i is None:
            return ["committee: not listed"]
        if i in v.accepted:
            return ["committee: already accepted"]
        v.accepted.add(i)
        return []

    def revoke_key(self, sender: str) -> list[str]:
        if sender in self.revoked:
            return ["committee: already revoked"]
        self.revoked.add(sender)
        return []

    def set_paused(self, sender: str, paused: bool) -> list[str]:
        if sender not in (self.guardian, self.owner):
            return ["admin: not guardian"]
        self.paused = paused
        return []

    def create_pact(self, t: PactTerms) -> int:
        self.pact_count += 1
        self.pacts[self.pact_count] = t
        return self.pact_count

    # -- stakes ------------------------------------------------------------------------------------
    def stake(self, who: str, amount: int, evaluator: bool) -> list[str]:
        if amount == 0:
            return ["stake: zero amount"]
        if evaluator:
            self.ev_stake[who] += amount
        else:
            self.agent_free[who] += amount
        return []

    def withdraw_stake(self, who: str, amount: int) -> list[str]:
        r = []
        if amount == 0:
            r.append("stake: zero amount")
        if amount > self.agent_free[who]:
            r.append("stake: exceeds free stake")
        if not r:
            self.agent_free[who] -= amount
        return r

    def request_unstake(self, who: str, amount: int) -> list[str]:
        r = []
        if amount == 0:
            r.append("stake: zero amount")
        if self.ev_pending[who] + amount + self.ev_reserved[who] > self.ev_stake[who]:
            r.append("stake: exceeds unreserved stake")
        if not r:
            self.ev_pending[who] += amount
            self.ev_unlock[who] = self.now + self.cooldown  # a new request restarts the cooldown
        return r

    def withdraw_evaluator_stake(self, who: str) -> list[str]:
        r = []
        if self.ev_pending[who] == 0:
            r.append("stake: nothing pending")
        if self.now < self.ev_unlock[who]:
            r.append("stake: cooldown not over")
        if not r:
            self.ev_stake[who] -= self.ev_pending[who]
            self.ev_pending[who] = 0
            self.ev_unlock[who] = 0
        return r

    def withdraw(self, who: str) -> list[str]:
        if self.credits[who] == 0:
            return ["escrow: nothing to withdraw"]
        self.credits[who] = 0
        return []

    # -- jobs --------------------------------------------------------------------------------------
    def take_paths(self) -> list[str]:
        out, self.paths = self.paths, []
        return out

    def take_feedback(self) -> list[tuple[int, int, bytes]]:
        out, self.feedback = self.feedback, []
        return out

    def open(self, buyer: str, agent: str, pid: int, value: int, ev: int, eav: int, sent: int) -> list[str]:
        t = self.pacts[pid]
        r = []
        if value == 0:
            r.append("escrow: zero value")
        if agent == buyer:
            r.append("escrow: buyer is agent")
        if self.paused:
            r.append("escrow: paused")
        cv, av = self.current_version(t.committee_id), self.current_version(t.appeal_committee_id)
        if (cv, av) != (ev, eav):
            r.append("escrow: committee changed")
        v, a = self.versions[cv], self.versions[av]
        if buyer in v.members + a.members or agent in v.members + a.members:
            r.append("escrow: party is evaluator")
        if a.threshold < v.threshold:
            r.append("escrow: appeal threshold low")
        if set(v.members) & set(a.members):
            r.append("escrow: committees overlap")
        if len(self.active(av)) < a.threshold:
            r.append("escrow: appeal quorum unavailable")
        act = self.active(cv)
        for i in act:
            m = v.members[i]
            if self.ev_stake[m] - self.ev_pending[m] < v.bond:
                r.append("escrow: member stake below bond")
            if self.ev_stake[m] - self.ev_pending[m] - self.ev_reserved[m] < v.penalty:
                r.append("escrow: member stake reserved")
        if len(act) < v.threshold:
            r.append("escrow: committee quorum unavailable")
        elif value + t.evaluator_fee + slash_of(t, value) > (len(act) - v.threshold + 1) * v.penalty:
            r.append("escrow: value above committee stake")
        if sent != value + t.evaluator_fee:
            r.append("escrow: wrong ETH amount")
        if r:
            return r
        for i in act:
            self.ev_reserved[v.members[i]] += v.penalty
        self.job_count += 1
        self.jobs[self.job_count] = Job(
            jid=self.job_count, pact_id=pid, buyer=buyer, agent=agent, value=value, fee=t.evaluator_fee,
            cv=cv, av=av, reserved=frozenset(act), deadline=self.now + t.accept_window)
        return []

    def accept(self, jid: int, sender: str) -> list[str]:
        j = self.jobs[jid]
        t = self.pacts[j.pact_id]
        r = []
        if self.paused:
            r.append("escrow: paused")
        if j.state != OPEN:
            r.append("escrow: not open")
        if sender != j.agent:
            r.append("escrow: not agent")
        if j.state == OPEN and self.now > j.deadline:
            r.append("escrow: accept window closed")
        key = (j.agent, j.pact_id)
        if self.exposure[key] + j.value > self.cap(j.agent, j.pact_id):
            r.append("escrow: exposure cap")
        b = bond_of(t, j.value)
        if self.agent_free[j.agent] < b:
            r.append("escrow: agent stake below bond")
        if r:
            return r
        self._state(j, ACCEPTED)
        j.deadline = self.now + t.work_window
        j.bond = b
        self.exposure[key] += j.value
        assert self.exposure[key] <= self.cap(j.agent, j.pact_id)  # no accept raises open value above the cap
        self.agent_free[j.agent] -= b
        self.agent_locked[j.agent] += b
        return []

    def submit(self, jid: int, sender: str, deliverable: bytes) -> list[str]:
        j = self.jobs[jid]
        r = []
        if j.state != ACCEPTED:
            r.append("escrow: not accepted")
        if sender != j.agent:
            r.append("escrow: not agent")
        if j.state == ACCEPTED and self.now > j.deadline:
            r.append("escrow: work deadline passed")
        if r:
            return r
        self._state(j, SUBMITTED)
        j.deadline = j.eval_deadline = j.close_at = self.now + self.pacts[j.pact_id].eval_window
        j.deliverable = deliverable
        return []

    def cancel(self, jid: int, sender: str) -> list[str]:
        j = self.jobs[jid]
        r = []
        if j.state != OPEN:
            r.append("escrow: not open")
        elif sender != j.buyer and self.now <= j.deadline:
            r.append("escrow: accept window open")
        if r:
            return r
        self._state(j, CANCELLED)
        self._release(j, j.reserved)
        self.credits[j.buyer] += j.value + j.fee
        return []

    def expire(self, jid: int) -> list[str]:
        j = self.jobs[jid]
        t = self.pacts[j.pact_id]
        if j.state == ACCEPTED:
            if self.now <= j.deadline:
                return ["escrow: work window open"]
            # no delivery: value and fee back, slash as a fail, cap reset
            self._state(j, EXPIRED_NO_DELIVERY)
            self._release(j, j.reserved)
            self.credits[j.buyer] += j.value + j.fee
            slashed = self._close_bond(j, slash=True)
            self.paths.append(f"expired: no delivery{', slashed' if slashed else ''}")
            self._record(j, LANE_NO_DELIVERY, 0, slashed)
            self.feedback.append((j.jid, 0, ZERO32))
            if self.bonus[(j.agent, j.pact_id)]:
                self.paths.append("cap reset from a raised cap (no delivery)")
            self.bonus[(j.agent, j.pact_id)] = 0
            return []
        if j.state != SUBMITTED:
            return ["escrow: not expirable"]
        if self.now <= j.eval_deadline:
            return ["escrow: evaluation window open"]
        # evaluator silence: the pact's default; silent reserved members' penalties burned
        self._state(j, EXPIRED_NO_VERDICT)
        v = self.versions[j.cv]
        silent = j.reserved - j.r0.keys()
        for i in silent:
            self._take_penalty(v.members[i], v.penalty)
            self.burned += v.penalty
        self._release(j, j.reserved - silent)
        to_agent = 0
        if t.silence_release:
            to_agent = j.value
            self.agent_free[j.agent] += j.value
            self.credits[j.buyer] += j.fee
        else:
            self.credits[j.buyer] += j.value + j.fee
        self._close_bond(j, slash=False)
        self.paths.append(f"expired: silence, {'release' if t.silence_release else 'refund'}, "
                          f"{len(silent)} penalties burned, {len(j.r0)} votes")
        self._record(j, LANE_NO_VERDICT, to_agent, 0)
        return []

    # -- votes -------------------------------------------------------------------------------------
    def _round0_reasons(self, j: Job, votes: list[VoteIn], check_sig: bool = True) -> list[str]:
        v = self.versions[j.cv]
        seen = set(j.r0)
        r = []
        for vote in votes:
            bad = []
            if j.state not in (SUBMITTED, VERDICT):
                bad.append("vote: job not in evaluation")
            elif self.now > min(vote.deadline, j.eval_deadline):
                bad.append("vote: deadline passed")
            if j.closed_early:
                bad.append("vote: round closed")
            if vote.score > BPS:
                bad.append("vote: score above 10000")
            i = v.index(vote.member)
            if i is None or i not in j.reserved:
                bad.append("vote: member not reserved")
            else:
                if vote.member in self.revoked:
                    bad.append("vote: key revoked")
                if i in seen:
                    bad.append("vote: duplicate vote")
            if check_sig and not vote.sig_ok:
                bad.append("vote: bad signature")
            if not bad and i is not None:
                seen.add(i)
            r += bad
        return r

    def _apply_round0(self, j: Job, votes: list[VoteIn]) -> None:
        v = self.versions[j.cv]
        for vote in votes:
            idx = v.index(vote.member)
            assert idx is not None
            j.r0[idx] = vote.score
        if j.state == SUBMITTED and len(j.r0) >= v.threshold:
            self._state(j, VERDICT)
        # ADR 004: round 0 closes early when a posted vote leaves no reserved, unrevoked member
        # without a counted vote
        if all(v.members[i] in self.revoked for i in j.reserved - j.r0.keys()):
            self.paths.append(f"round 0 closed early {'with' if j.state == VERDICT else 'without'} a verdict")
            if j.state == VERDICT and self.pacts[j.pact_id].challenge_window == 0:
                # ADR 011: it settles at once, the round-0 close left as it was (E); Feedback
                # carries the evidence of the call's first vote of the job
                self.paths.append("settled by the closing vote (no challenge window)")
                self._settle_score(j, median_of(list(j.r0.values())), set(j.reserved), votes[0].evidence)
            else:
                j.close_at = self.now

    @staticmethod
    def _call_refusal(votes: list[VoteIn], fields_ok: bool) -> list[str]:
        """What refuses a settle or appeal call before any vote is looked at: more votes than
        the bound, none, or stale job fields (in the escrow's order)."""
        if len(votes) > MAX_CALL_VOTES:
            return [OVER_BOUND]
        if not votes:
            return ["vote: no votes"]
        if not fields_ok:
            return [STALE]
        return []

    def settle(self, jid: int, votes: list[VoteIn], fields_ok: bool = True) -> list[str]:
        """Round-0 votes of one job; with stale fields, refused before anything is checked but
        the number of votes."""
        j = self.jobs[jid]
        refused = self._call_refusal(votes, fields_ok)
        if refused:
            return refused
        r = self._round0_reasons(j, votes)
        if not r:
            self._apply_round0(j, votes)
        return r

    def settle_batch(self, pid: int, items: list[BatchItemIn], signers: dict[str, tuple[int, bool]],
                     stale: frozenset[int] = frozenset(), fields_given: int | None = None) -> list[str]:
        """Round-0 batch: `signers` maps member -> (batch deadline, batch signature valid), in
        the call's order. The escrow rebuilds each signer's root from its items, so a signer
        without items, or whose items are not the votes it signed, refuses the call. `stale`:
        jobs whose fields in the call are stale; `fields_given`: the number of job fields the
        call carries (default one per run of a job's items)."""
        r = [] if items else ["vote: no votes"]
        groups: list[tuple[Job, list[VoteIn]]] = []
        voted: set[str] = set()
        for it in items:
            j = self.jobs[it.jid]
            if not groups or groups[-1][0] is not j:
                assert all(g[0] is not j for g in groups), "a batch's items of one job must be adjacent"
                groups.append((j, []))
                if fields_given is not None and len(groups) > fields_given:
                    r.append("vote: job fields missing")
                if it.jid in stale:
                    r.append(STALE)
                if j.pact_id != pid:
                    r.append("vote: job of another pact")
            if it.member not in signers:
                r.append("vote: member did not sign batch")
                continue
            voted.add(it.member)
            if not it.signed_ok:
                r.append("vote: votes differ from the signed batch")
            groups[-1][1].append(VoteIn(it.member, it.score, signers[it.member][0], evidence=it.evidence))
        for j, votes in groups:
            r += self._round0_reasons(j, votes, check_sig=False)
        r += ["vote: signature without votes" for m in signers if m not in voted]
        r += ["vote: bad signature" for _, ok in signers.values() if not ok]
        if not r:
            for j, votes in groups:
                self._apply_round0(j, votes)
        return r

    def appeal(self, jid: int, votes: list[VoteIn], fields_ok: bool = True) -> list[str]:
        j = self.jobs[jid]
        a = self.versions[j.av]
        refused = self._call_refusal(votes, fields_ok)
        if refused:
            return refused
        r: list[str] = []
        seen = set(j.r1)
        for vote in votes:
            bad = []
            if j.state != CHALLENGED:
                bad.append("vote: job not in appeal")
            elif self.now > min(vote.deadline, j.deadline):
                bad.append("vote: deadline passed")
            if vote.score > BPS:
                bad.append("vote: score above 10000")
            i = a.index(vote.member)
            if i is None or i not in a.accepted:
                bad.append("vote: not an appeal member")
            else:
                if vote.member in self.revoked:
                    bad.append("vote: key revoked")
                if self.ev_stake[vote.member] - self.ev_pending[vote.member] < a.bond:
                    bad.append("vote: member stake below bond")
                if i in seen:
                    bad.append("vote: duplicate vote")
            if not vote.sig_ok:
                bad.append("vote: bad signature")
            if not bad and i is not None:
                seen.add(i)
            r += bad
        if not r:
            for vote in votes:
                idx = a.index(vote.member)
                assert idx is not None
                j.r1[idx] = vote.score
        return r

    def round0_closed(self, j: Job) -> bool:
        """After round-0 close ("after X" is timestamp > X): close_at is E, or the time of the
        vote that closed the round early."""
        return self.now > j.close_at

    def challenge(self, jid: int, sender: str, expected: int, sent: int) -> list[str]:
        j = self.jobs[jid]
        t = self.pacts[j.pact_id]
        r = []
        if j.state != VERDICT:
            r.append("escrow: no verdict to challenge")
        if t.challenge_window == 0:
            r.append("escrow: pact has no challenges")
        if j.state == VERDICT:
            if not self.round0_closed(j):
                r.append("escrow: round 0 open")
            if self.now > j.close_at + t.challenge_window:
                r.append("escrow: challenge window closed")
            if median_of(list(j.r0.values())) != expected:
                r.append("escrow: score changed")
        if sender not in (j.buyer, j.agent):
            r.append("escrow: not a party")
        if sent != t.challenge_bond:
            r.append("escrow: wrong ETH amount")
        if r:
            return r
        self._state(j, CHALLENGED)
        j.challenger = sender
        j.deadline = self.now + t.appeal_window
        return []

    def _evidence(self, j: Job, e: EvidenceIn | None) -> tuple[list[str], bytes]:
        """ADR 011: Feedback's evidence in finalize and resolve: none (zero), or a counted
        round-0 vote, checked (its lane holds its score, its signature is the member's)."""
        if e is None:
            return [], ZERO32
        i = self.versions[j.cv].index(e.member)
        if i is None or e.score > BPS or j.r0.get(i) != e.score:
            return ["escrow: evidence vote not counted"], ZERO32
        if not e.sig_ok:
            return ["escrow: evidence vote unsigned"], ZERO32
        return [], e.evidence

    def resolve(self, jid: int, evidence: EvidenceIn | None = None) -> list[str]:
        j = self.jobs[jid]
        if j.state != CHALLENGED:
            return ["escrow: not challenged"]
        t = self.pacts[j.pact_id]
        a = self.versions[j.av]
        v = self.versions[j.cv]
        n1 = len(j.r1)
        if self.now <= j.deadline and not (n1 >= a.threshold and self.active(j.av) <= j.r1.keys()):
            return ["escrow: appeal open"]
        bad, ev = self._evidence(j, evidence)
        if bad:
            return bad
        assert j.challenger is not None
        by_agent = j.challenger == j.agent
        other = j.buyer if by_agent else j.agent
        s0 = median_of(list(j.r0.values()))
        round0 = [j.r0[i] for i in sorted(j.r0)]
        round1 = [j.r1[i] for i in sorted(j.r1)]
        lib = money.appeal(t, s0, round0, round1, a.threshold, "agent" if by_agent else "buyer")
        self._count(j, LANE_CHALLENGES)
        if n1 < a.threshold:
            # no round-1 quorum by P: s0 stands, the whole bond back, no fee taken
            self.credits[j.challenger] += t.challenge_bond
            self.paths.append("resolved: no round-1 quorum")
            self._check_lib(lib.quorum is False and lib.to_challenger == t.challenge_bond and lib.final_score == s0,
                            "appeal (no quorum)", lib)
            self._settle_score(j, s0, set(j.reserved), ev)
            return []
        s1 = median_of(round1)
        p0, p1 = pay_of(t, s0), pay_of(t, s1)
        overturned = abs(p0 - p1) >= t.min_appeal_delta_bps
        favoured = j.buyer if p1 < p0 else j.agent
        won = overturned and favoured == j.challenger
        fee_each = t.appeal_fee // n1
        to_challenger = t.appeal_fee - fee_each * n1
        for i in j.r1:
            self.credits[a.members[i]] += fee_each
        rest = t.challenge_bond - t.appeal_fee
        to_other = burned = 0
        if won:
            to_challenger += rest
        else:
            to_other, burned = rest // 2, rest - rest // 2
        self.credits[other] += to_other
        self.burned += burned
        self.credits[j.challenger] += to_challenger
        release = set(j.reserved)
        penalized = []
        if overturned:
            delta = t.min_appeal_delta_bps
            for k, i in enumerate(sorted(j.r0)):
                pv = pay_of(t, j.r0[i])
                beyond = pv >= p1 + delta if p1 < p0 else pv + delta <= p1
                if beyond:
                    penalized.append(k)
                    self._take_penalty(v.members[i], v.penalty)
                    self.credits[favoured] += v.penalty
                    release.discard(i)
        if overturned:
            self.pact_counts[(j.pact_id, LANE_SEVENTH)] += 1
        if by_agent and not won:
            self.agent_counts[(j.agent, LANE_SEVENTH)] += 1
        final = s1 if overturned else s0
        self.paths.append(f"resolved: {'overturned' if overturned else 'upheld'}, challenger "
                          f"{'won' if won else 'lost'}, {len(penalized)} penalties")
        self._check_lib(
            (lib.quorum, lib.overturned, lib.challenger_won, lib.final_score, lib.fee_each, lib.to_challenger,
             lib.to_other, lib.burned, lib.penalized, lib.favoured)
            == (True, overturned, won, final, fee_each, to_challenger, to_other, burned, penalized,
                "buyer" if favoured == j.buyer else "agent"), "appeal", lib)
        self._settle_score(j, final, release, ev)
        return []

    def finalize(self, jid: int, evidence: EvidenceIn | None = None) -> list[str]:
        j = self.jobs[jid]
        t = self.pacts[j.pact_id]
        if j.state != VERDICT:
            return ["escrow: no verdict"]
        if self.now <= j.close_at + t.challenge_window:
            return ["escrow: challenge window open"]
        bad, ev = self._evidence(j, evidence)
        if bad:
            return bad
        self._settle_score(j, median_of(list(j.r0.values())), set(j.reserved), ev)
        return []

    # -- terminal money ---------------------------------------------------------------------------
    def _state(self, j: Job, state: int) -> None:
        assert j.state not in TERMINAL, f"job {j.jid}: terminal state {STATE_NAMES[j.state]} changed"
        j.state = state

    def _release(self, j: Job, members: frozenset[int] | set[int]) -> None:
        v = self.versions[j.cv]
        for i in members:
            self.ev_reserved[v.members[i]] -= v.penalty

    def _take_penalty(self, m: str, penalty: int) -> None:
        # the reservation itself is taken; a pending withdrawal keeps fitting in what is left
        self.ev_stake[m] -= penalty
        self.ev_reserved[m] -= penalty
        self.ev_pending[m] = min(self.ev_pending[m], self.ev_stake[m] - self.ev_reserved[m])

    def _close_bond(self, j: Job, slash: bool) -> int:
        t = self.pacts[j.pact_id]
        assert j.bond == bond_of(t, j.value)
        self.exposure[(j.agent, j.pact_id)] -= j.value
        slashed = ceil_div(j.bond * t.slash_bps, BPS) if slash else 0
        self.agent_locked[j.agent] -= j.bond
        self.agent_free[j.agent] += j.bond - slashed
        to_ins = slashed * t.slash_insurance_bps // BPS
        to_burn = slashed * t.slash_burn_bps // BPS
        self.credits[j.buyer] += slashed - to_ins - to_burn
        self.credits[t.insurance] += to_ins
        self.burned += to_burn
        return slashed

    def _count(self, j: Job, lane: int) -> None:
        self.agent_counts[(j.agent, lane)] += 1
        self.pact_counts[(j.pact_id, lane)] += 1

    def _record(self, j: Job, lane: int, released: int, slashed: int) -> None:
        if lane in (LANE_PASSED, LANE_PARTIAL, LANE_FAILED):
            self._count(j, LANE_SETTLED)
        self._count(j, lane)
        for ledger, key in ((self.agent_money, j.agent), (self.pact_money, j.pact_id)):
            ledger[(key, 0)] += released
            ledger[(key, 1)] += slashed

    def _settle_score(self, j: Job, score: int, release: set[int], evidence: bytes) -> None:
        """The terminal transition of a job with a verdict (DESIGN "Settlement", "Money of one
        job"); Feedback carries `evidence`."""
        t = self.pacts[j.pact_id]
        v = self.versions[j.cv]
        self._state(j, SETTLED)
        self.feedback.append((j.jid, score, evidence))
        to_agent = j.value if t.shadow else j.value * pay_of(t, score) // BPS
        to_buyer = j.value - to_agent
        n0 = len(j.r0)
        fee_each = j.fee // n0
        to_buyer += j.fee - fee_each * n0
        for i in j.r0:
            self.credits[v.members[i]] += fee_each
        self._release(j, release)
        band = band_of(t, score)
        self.paths.append(f"settled: {['pass', 'partial', 'fail'][band - 1]}{' (shadow)' if t.shadow else ''}, "
                          f"{n0} voters")
        credits_before = self.credits[j.buyer]
        slashed = self._close_bond(j, slash=band == LANE_FAILED)
        slash_to_buyer = self.credits[j.buyer] - credits_before
        self.agent_free[j.agent] += to_agent
        self.credits[j.buyer] += to_buyer
        self._record(j, band, to_agent, slashed)
        key = (j.agent, j.pact_id)
        if band == LANE_PASSED and j.value >= t.min_expansion_value:
            self.paths.append("cap raised (pass)" if self.bonus[key] < t.cap_max - t.cap_initial else "cap at max (pass)")
            self.bonus[key] = min(self.bonus[key] + min(t.cap_step, j.value), t.cap_max - t.cap_initial)
        elif band == LANE_FAILED:
            if self.bonus[key]:
                self.paths.append("cap reset from a raised cap (fail)")
            self.bonus[key] = 0
        lib = money.settle(t, j.value, score, n0)
        to_ins = slashed * t.slash_insurance_bps // BPS
        to_burn = slashed * t.slash_burn_bps // BPS
        self._check_lib(
            (lib.to_agent, lib.to_buyer, lib.fee_each, lib.slashed, lib.to_insurance, lib.burned, lib.bond_returned)
            == (to_agent, to_buyer + slash_to_buyer, fee_each, slashed, to_ins, to_burn, j.bond - slashed),
            "settle", lib)

    def _check_lib(self, ok: bool, what: str, lib: object) -> None:
        self.settlements += 1
        assert ok, f"pactbond.money.{what} disagrees with the model: {lib}"

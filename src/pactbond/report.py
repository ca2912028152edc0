"""The rollout report: per stage of a rollout, what the chain says happened and whether the
rollout's expansion rule is met.

    rollout = load_rollout("examples/rollout.yaml")
    report = build_report(pb, rollout)
    print(render_table(report))
    report.model_dump_json(indent=2)
    plot(report, "rollout.png")

One scan of the escrow's events from the deployment block (only the event names the report
uses), filtered to the stages' pacts, plus one timestamp per block that matters (cached, fetched
in batches). Counts and money are ints (wei or the token's smallest unit); rates are basis points
(floor), None when their denominator is zero. What each figure means is in docs/rollout.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from eth_utils.address import is_checksum_address, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from web3 import Web3

from pactbond import money
from pactbond.client import Pactbond
from pactbond.errors import InvalidInputError, UnknownObjectError
from pactbond.events import (
    AppealResolved,
    Feedback,
    JobCancelled,
    JobChallenged,
    JobExpired,
    JobOpened,
    JobSettled,
    PactCreated,
    VerdictReached,
)
from pactbond.models import BPS, ZERO_ADDRESS, PactTerms

DAY = 86_400
EVENT_NAMES = (
    "PactCreated", "JobOpened", "JobSettled", "JobExpired", "JobCancelled", "JobChallenged",
    "AppealResolved", "VerdictReached", "Feedback",
)
_KIND_ORDER = {"shadow": 0, "bounded": 1, "full": 2}

Count = Annotated[int, Field(strict=True, ge=0)]
RateBps = Annotated[int, Field(strict=True, ge=0, le=BPS)]
Text = Annotated[str, Field(strict=True, min_length=1)]


# -- the rollout file ----------------------------------------------------------------------
class StageKind(StrEnum):
    SHADOW = "shadow"
    BOUNDED = "bounded"
    FULL = "full"


class Stage(BaseModel):
    """One stage of a rollout: a pact (never edited; expanding means the next stage's pact)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Text
    pact_id: Annotated[int, Field(strict=True, ge=1)]
    kind: StageKind


class ExpansionRule(BaseModel):
    """When a stage has earned the next one. Counted over the stage's jobs that ended within
    the last `within_days` days before the report's time (all of them when None)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_settled: Count
    min_pass_rate_bps: RateBps
    max_overturned: Count
    within_days: Annotated[int, Field(strict=True, ge=1)] | None = None
    max_no_delivery: Count | None = None  # None: not part of the rule


def _is_address(v: str) -> bool:
    """0x and 40 hex digits (any other owner is a name)."""
    try:
        return len(v) == 42 and v.startswith("0x") and int(v, 16) >= 0
    except ValueError:
        return False


class Rollout(BaseModel):
    """A rollout file: one workflow, one owner, one proof model, the stages in order, and one
    explicit expansion rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Text
    owner: Text  # a team name, or the pact owner's address (then checked against the chain)
    workflow: Text
    proof_model: Text
    review_cadence: Text | None = None
    stages: Annotated[list[Stage], Field(min_length=1)]
    expansion: ExpansionRule

    @field_validator("owner")
    @classmethod
    def _owner(cls, v: str) -> str:
        if _is_address(v):
            if v != v.lower() and not is_checksum_address(v):
                raise ValueError(f"bad checksum in address {v}")
            return to_checksum_address(v)
        return v

    @field_validator("stages")
    @classmethod
    def _stages(cls, v: list[Stage]) -> list[Stage]:
        for what, keys in (("name", [s.name for s in v]),
                           ("pact_id", [str(s.pact_id) for s in v])):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            if dup:
                raise ValueError(f"two stages with the same {what}: {', '.join(dup)}")
        order = [_KIND_ORDER[s.kind.value] for s in v]
        if order != sorted(order):
            raise ValueError("stages go shadow -> bounded -> full: "
                             + " -> ".join(s.kind.value for s in v) + " is out of order")
        return v


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "rollout"


def parse_rollout(doc: Any, source: str = "rollout") -> Rollout:
    """A Rollout from a decoded document; every wrong field is named in one InvalidInputError."""
    if not isinstance(doc, Mapping):
        raise InvalidInputError(f"{source} must hold a mapping of fields")
    try:
        return Rollout.model_validate(dict(doc))
    except ValidationError as e:
        msgs = [f"{_where(tuple(err['loc']))}: {err['msg']}" for err in e.errors()]
        raise InvalidInputError(f"{source}: " + "; ".join(msgs)) from None


def load_rollout(path: str | Path) -> Rollout:
    """Read a rollout file: JSON when it ends in .json, YAML otherwise."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise InvalidInputError(f"cannot read rollout file {p}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"rollout file {p} is not a text file: expected YAML or JSON") \
            from None
    try:
        doc = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InvalidInputError(f"rollout file {p} is not valid YAML/JSON: {first}") from None
    return parse_rollout(doc, f"rollout file {p}")


# -- the report ----------------------------------------------------------------------------
Outcome = Literal["pass", "partial", "fail", "no_delivery", "no_verdict"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "partial", "fail", "no_delivery", "no_verdict")


class OutcomePoint(BaseModel):
    """One job's recorded end (what the plot draws)."""

    at: int  # block timestamp of the terminal transition
    block: int
    job_id: int
    outcome: Outcome
    score_bps: int | None  # the final score (s1 when an appeal overturned s0); None: no verdict
    value: int
    to_agent: int
    slashed: int
    challenged: bool
    overturned: bool


class RuleCheck(BaseModel):
    rule: str  # "settled", "pass_rate", "overturned", "no_delivery"
    actual: int | None  # None: no value (a rate without verdicts)
    required: int
    ok: bool
    reason: str


class Expansion(BaseModel):
    """Whether the stage meets the expansion rule, and why (every rule with its value)."""

    met: bool
    next_stage: str | None  # None: the last stage (the rule is still evaluated)
    window_from: int | None  # the window is (window_from, now]; None: all of the stage
    window_to: int
    settled: int
    verdicts: int
    passed: int
    pass_rate_bps: int | None
    overturned: int
    no_delivery: int
    checks: list[RuleCheck]
    reasons: list[str]


class StageReport(BaseModel):
    name: str
    kind: StageKind
    pact_id: int
    shadow: bool  # the pact's on-chain term
    asset: str
    decimals: int
    created_at: int
    first_opened_at: int | None
    first_settled_at: int | None
    first_settled_after_s: int | None  # first settled job's time - pact creation time
    jobs_opened: int
    jobs_open: int  # not yet terminal
    jobs_settled: int  # recorded terminal outcomes: verdicts + no_delivery + no_verdict
    verdicts: int  # settled with a verdict: passed + partial + failed
    passed: int
    partial: int
    failed: int
    no_delivery: int
    no_verdict: int
    cancelled: int  # terminal too, but nothing is recorded: not counted as settled
    pass_rate_bps: int | None  # of verdicts
    partial_rate_bps: int | None
    fail_rate_bps: int | None
    value_opened: int
    value_released: int  # to the agent (JobSettled.to_agent + silence releases)
    value_slashed: int  # from the agent's bonds (fails and no deliveries)
    would_release: int  # what the verdicts' pay(s) gives; differs from released on shadow
    challenges: int  # challenges made (resolved or not)
    overturned: int
    rollback_rate_bps: int | None  # overturned of verdicts
    distinct_buyers: int
    last_evidence_at: int | None  # latest verdict or Feedback
    evidence_age_s: int | None
    expansion: Expansion
    outcomes: list[OutcomePoint]


class Report(BaseModel):
    rollout: str
    owner: str
    workflow: str
    proof_model: str
    review_cadence: str | None
    chain_id: int
    escrow: str
    from_block: int
    to_block: int
    now: int
    rule: ExpansionRule
    stages: list[StageReport]


class BlockTimes:
    """Block number -> timestamp, cached; missing ones fetched in JSON-RPC batches."""

    def __init__(self, w3: Web3, batch: int = 100) -> None:
        self.w3 = w3
        self.batch = batch
        self.cache: dict[int, int] = {}

    def fetch(self, blocks: Iterable[int]) -> None:
        todo = sorted(set(blocks) - self.cache.keys())
        for i in range(0, len(todo), self.batch):
            chunk = todo[i : i + self.batch]
            try:
                with self.w3.batch_requests() as b:
                    for n in chunk:
                        b.add(self.w3.eth.get_block(n))
                    got = b.execute()
                for n, blk in zip(chunk, got, strict=True):
                    self.cache[n] = int(blk["timestamp"])  # type: ignore[typeddict-item]
            except Exception:  # a provider without batches: one request per block
                for n in chunk:
                    self.cache[n] = int(self.w3.eth.get_block(n)["timestamp"])

    def __getitem__(self, block: int) -> int:
        if block not in self.cache:
            self.fetch([block])
        return self.cache[block]


class _Job:
    __slots__ = ("block", "buyer", "challenged", "end", "overturned", "pact_id", "value")

    def __init__(self, ev: JobOpened) -> None:
        self.pact_id = ev.pact_id
        self.value = ev.value
        self.buyer = ev.buyer
        self.block = ev.block_number
        self.challenged = False
        self.overturned = False
        self.end: JobSettled | JobExpired | JobCancelled | None = None


class _Pact:
    def __init__(self, ev: PactCreated) -> None:
        self.terms: PactTerms = ev.terms
        self.owner = ev.owner
        self.block = ev.block_number
        self.jobs: dict[int, _Job] = {}
        self.evidence_block: int | None = None


def _rate(n: int, d: int) -> int | None:
    return None if d == 0 else n * BPS // d


def pct(bps: int | None) -> str:
    """Basis points as a percentage with two decimals, from ints ("n/a" for None)."""
    return "n/a" if bps is None else f"{bps // 100}.{bps % 100:02d} %"


def _outcome(terms: PactTerms, job: _Job, end: JobSettled | JobExpired, at: int) -> OutcomePoint:
    if isinstance(end, JobSettled):
        band = money.band(terms, end.score_bps)
        outcome: Outcome = "pass" if band == "pass" else "fail" if band == "fail" else "partial"
        score: int | None = end.score_bps
    else:
        outcome = "no_delivery" if end.no_delivery else "no_verdict"
        score = 0 if end.no_delivery else None  # no delivery is recorded as score 0 (Feedback)
    return OutcomePoint(
        at=at, block=end.block_number, job_id=end.job_id, outcome=outcome, score_bps=score,
        value=job.value, to_agent=end.to_agent, slashed=end.slashed,
        challenged=job.challenged, overturned=job.overturned,
    )


def _expansion(rule: ExpansionRule, points: list[OutcomePoint], next_stage: str | None,
               now: int) -> Expansion:
    since = None if rule.within_days is None else now - rule.within_days * DAY
    inside = [p for p in points if p.at <= now and (since is None or p.at > since)]
    verdicts = [p for p in inside if p.outcome in ("pass", "partial", "fail")]
    passed = sum(p.outcome == "pass" for p in verdicts)
    overturned = sum(p.overturned for p in inside)
    no_delivery = sum(p.outcome == "no_delivery" for p in inside)
    rate = _rate(passed, len(verdicts))
    checks = [
        RuleCheck(rule="settled", actual=len(inside), required=rule.min_settled,
                  ok=len(inside) >= rule.min_settled,
                  reason=f"settled {len(inside)} {'>=' if len(inside) >= rule.min_settled else '<'}"
                  f" {rule.min_settled}"),
        RuleCheck(rule="pass_rate", actual=rate, required=rule.min_pass_rate_bps,
                  ok=rate is not None and rate >= rule.min_pass_rate_bps,
                  reason=(f"pass rate n/a (no verdicts) < {pct(rule.min_pass_rate_bps)}"
                          if rate is None else
                          f"pass rate {pct(rate)} ({passed}/{len(verdicts)}) "
                          f"{'>=' if rate >= rule.min_pass_rate_bps else '<'} "
                          f"{pct(rule.min_pass_rate_bps)}")),
        RuleCheck(rule="overturned", actual=overturned, required=rule.max_overturned,
                  ok=overturned <= rule.max_overturned,
                  reason=f"overturned {overturned} "
                  f"{'<=' if overturned <= rule.max_overturned else '>'} {rule.max_overturned}"),
    ]
    if rule.max_no_delivery is not None:
        ok = no_delivery <= rule.max_no_delivery
        checks.append(RuleCheck(
            rule="no_delivery", actual=no_delivery, required=rule.max_no_delivery, ok=ok,
            reason=f"no delivery {no_delivery} {'<=' if ok else '>'} {rule.max_no_delivery}"))
    window = "" if rule.within_days is None else f" in the last {rule.within_days} days"
    return Expansion(
        met=all(c.ok for c in checks), next_stage=next_stage, window_from=since, window_to=now,
        settled=len(inside), verdicts=len(verdicts), passed=passed, pass_rate_bps=rate,
        overturned=overturned, no_delivery=no_delivery, checks=checks,
        reasons=[c.reason + window for c in checks],
    )


def build_report(
    pb: Pactbond,
    rollout: Rollout,
    now: int | None = None,
    *,
    to_block: int | None = None,
    confirmations: int = 0,
    times: BlockTimes | None = None,
) -> Report:
    """Read the chain once (events up to `to_block`, at least `confirmations` deep) and report
    every stage. `now` (default: the last block read's timestamp) is the time evidence age and
    the rule's window count from; it may not precede the last block read."""
    if confirmations < 0:
        raise InvalidInputError("confirmations must be >= 0")
    times = times if times is not None else BlockTimes(pb.w3)
    first = pb.manifest.block
    head = pb.w3.eth.block_number - confirmations
    last = head if to_block is None else min(to_block, head)
    if last < first:
        raise InvalidInputError(f"to_block {last} is before the deployment block {first}")
    wanted = {s.pact_id for s in rollout.stages}
    pacts: dict[int, _Pact] = {}
    jobs: dict[int, _Job] = {}
    for ev in pb.events(first, last, names=list(EVENT_NAMES)):
        if isinstance(ev, PactCreated):
            if ev.pact_id in wanted:
                pacts[ev.pact_id] = _Pact(ev)
            continue
        if isinstance(ev, JobOpened):
            if ev.pact_id in pacts:
                jobs[ev.job_id] = pacts[ev.pact_id].jobs[ev.job_id] = _Job(ev)
            continue
        job = jobs.get(getattr(ev, "job_id", -1))
        if job is None:  # a job of a pact outside the rollout
            continue
        if isinstance(ev, JobSettled | JobExpired | JobCancelled):
            job.end = ev
        elif isinstance(ev, JobChallenged):
            job.challenged = True
        elif isinstance(ev, AppealResolved):
            job.overturned = ev.overturned
        elif isinstance(ev, VerdictReached | Feedback):
            pacts[job.pact_id].evidence_block = ev.block_number

    for s in rollout.stages:
        p = pacts.get(s.pact_id)
        if p is None:
            raise UnknownObjectError(
                "escrow: unknown pact",
                f"stage {s.name!r}: no pact {s.pact_id} on this deployment up to block {last}")
        if p.terms.shadow != (s.kind == StageKind.SHADOW):
            raise InvalidInputError(
                f"stage {s.name!r} is kind {s.kind.value} but pact {s.pact_id} is "
                f"{'a shadow' if p.terms.shadow else 'not a shadow'} pact")
        if _is_address(rollout.owner) and rollout.owner != to_checksum_address(p.owner):
            raise InvalidInputError(
                f"stage {s.name!r}: pact {s.pact_id} is owned by {p.owner}, the rollout's owner "
                f"is {rollout.owner}")

    # one timestamp per block that matters, fetched together
    need = {last}
    for p in pacts.values():
        need.add(p.block)
        if p.jobs:
            need.add(min(j.block for j in p.jobs.values()))
        if p.evidence_block is not None:
            need.add(p.evidence_block)
        need.update(j.end.block_number for j in p.jobs.values() if j.end is not None)
    times.fetch(need)
    last_at = times[last]
    if now is None:
        now = last_at
    elif now < last_at:
        raise InvalidInputError(
            f"now {now} precedes block {last} (time {last_at}): pass to_block for an earlier "
            "report")

    stages: list[StageReport] = []
    for i, s in enumerate(rollout.stages):
        p = pacts[s.pact_id]
        t = p.terms
        points: list[OutcomePoint] = []
        cancelled = would = 0
        for job in p.jobs.values():
            if isinstance(job.end, JobCancelled):
                cancelled += 1
            elif job.end is not None:
                pt = _outcome(t, job, job.end, times[job.end.block_number])
                points.append(pt)
                if pt.outcome in ("pass", "partial", "fail"):
                    would += job.value * money.pay(t, pt.score_bps or 0) // BPS
                else:
                    would += pt.to_agent  # silence's default; no delivery releases nothing
        points.sort(key=lambda x: (x.block, x.job_id))
        n = {o: sum(pt.outcome == o for pt in points) for o in OUTCOMES}
        verdicts = n["pass"] + n["partial"] + n["fail"]
        overturned = sum(pt.overturned for pt in points)
        created = times[p.block]
        first_opened = times[min(j.block for j in p.jobs.values())] if p.jobs else None
        first_settled = points[0].at if points else None
        evidence_at = None if p.evidence_block is None else times[p.evidence_block]
        stages.append(StageReport(
            name=s.name, kind=s.kind, pact_id=s.pact_id, shadow=t.shadow, asset=t.asset,
            decimals=pb.token_decimals(t.asset), created_at=created,
            first_opened_at=first_opened, first_settled_at=first_settled,
            first_settled_after_s=None if first_settled is None else first_settled - created,
            jobs_opened=len(p.jobs), jobs_open=len(p.jobs) - len(points) - cancelled,
            jobs_settled=len(points), verdicts=verdicts, passed=n["pass"],
            partial=n["partial"], failed=n["fail"], no_delivery=n["no_delivery"],
            no_verdict=n["no_verdict"], cancelled=cancelled,
            pass_rate_bps=_rate(n["pass"], verdicts),
            partial_rate_bps=_rate(n["partial"], verdicts),
            fail_rate_bps=_rate(n["fail"], verdicts),
            value_opened=sum(j.value for j in p.jobs.values()),
            value_released=sum(pt.to_agent for pt in points),
            value_slashed=sum(pt.slashed for pt in points), would_release=would,
            challenges=sum(j.challenged for j in p.jobs.values()), overturned=overturned,
            rollback_rate_bps=_rate(overturned, verdicts),
            # of settled jobs only: a cancelled or open job costs a throwaway buyer only gas,
            # and an expiry's slash goes back to that buyer (the agent's own wallet)
            distinct_buyers=len({j.buyer for j in p.jobs.values()
                                 if isinstance(j.end, JobSettled)}),
            last_evidence_at=evidence_at,
            evidence_age_s=None if evidence_at is None else now - evidence_at,
            expansion=_expansion(
                rollout.expansion, points,
                rollout.stages[i + 1].name if i + 1 < len(rollout.stages) else None, now),
            outcomes=points,
        ))
    return Report(
        rollout=rollout.name, owner=rollout.owner, workflow=rollout.workflow,
        proof_model=rollout.proof_model, review_cadence=rollout.review_cadence,
        chain_id=pb.chain_id, escrow=pb.escrow.address, from_block=first, to_block=last,
        now=now, rule=rollout.expansion, stages=stages,
    )


# -- the terminal table --------------------------------------------------------------------
def units(amount: int, decimals: int, asset: str = ZERO_ADDRESS) -> str:
    """An amount in whole units, exactly (no float): 1500000000000000000, 18 -> "1.5 ETH"."""
    whole, frac = divmod(amount, 10**decimals)
    digits = f"{frac:0{decimals}d}".rstrip("0") if decimals else ""
    symbol = "ETH" if asset == ZERO_ADDRESS else f"{asset[:6]}..{asset[-4:]}"
    return f"{whole}{'.' + digits if digits else ''} {symbol}"


def duration(seconds: int | None) -> str:
    """Seconds as "2d 3h", "3h 4m", "4m 5s" or "5s" ("n/a" for None)."""
    if seconds is None:
        return "n/a"
    sign, s = ("-", -seconds) if seconds < 0 else ("", seconds)
    d, rem = divmod(s, DAY)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    if d:
        return f"{sign}{d}d {h}h"
    if h:
        return f"{sign}{h}h {m}m"
    return f"{sign}{m}m {sec}s" if m else f"{sign}{sec}s"


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _rule_text(rule: ExpansionRule) -> str:
    parts = [f"settled >= {rule.min_settled}", f"pass rate >= {pct(rule.min_pass_rate_bps)}",
             f"overturned <= {rule.max_overturned}"]
    if rule.max_no_delivery is not None:
        parts.append(f"no delivery <= {rule.max_no_delivery}")
    parts.append("over the whole stage" if rule.within_days is None
                 else f"within {rule.within_days} days")
    return ", ".join(parts)


def render_table(report: Report) -> str:
    """The report as a plain-text table: one column per stage, then each stage's expansion
    verdict with its reasons."""
    st = report.stages

    def money_row(label: str, attr: str) -> tuple[str, list[str]]:
        return label, [units(getattr(s, attr), s.decimals, s.asset) for s in st]

    rows: list[tuple[str, list[str]]] = [
        ("kind", [s.kind.value + (" (shadow pact)" if s.shadow and s.kind != "shadow" else "")
                  for s in st]),
        ("pact", [str(s.pact_id) for s in st]),
        ("jobs opened", [str(s.jobs_opened) for s in st]),
        ("jobs open", [str(s.jobs_open) for s in st]),
        ("settled", [str(s.jobs_settled) for s in st]),
        ("  with a verdict", [str(s.verdicts) for s in st]),
        ("  pass / partial / fail", [f"{s.passed} / {s.partial} / {s.failed}" for s in st]),
        ("  no delivery", [str(s.no_delivery) for s in st]),
        ("  no verdict", [str(s.no_verdict) for s in st]),
        ("cancelled", [str(s.cancelled) for s in st]),
        ("pass rate", [pct(s.pass_rate_bps) for s in st]),
        ("partial rate", [pct(s.partial_rate_bps) for s in st]),
        ("fail rate", [pct(s.fail_rate_bps) for s in st]),
        money_row("value opened", "value_opened"),
        money_row("value released", "value_released"),
        money_row("  by the verdicts", "would_release"),
        money_row("value slashed", "value_slashed"),
        ("challenges", [str(s.challenges) for s in st]),
        ("overturned", [str(s.overturned) for s in st]),
        ("rollback rate", [pct(s.rollback_rate_bps) for s in st]),
        ("distinct buyers", [str(s.distinct_buyers) for s in st]),
        ("first settled after", [duration(s.first_settled_after_s) for s in st]),
        ("evidence age", [duration(s.evidence_age_s) for s in st]),
        ("expansion rule", ["MET" if s.expansion.met else "NOT MET" for s in st]),
    ]
    header = ("stage", [s.name for s in st])
    width0 = max(len(r[0]) for r in [header, *rows])
    widths = [max(len(header[1][i]), *(len(r[1][i]) for r in rows)) for i in range(len(st))]

    def line(label: str, cells: list[str]) -> str:
        return "  ".join([label.ljust(width0), *(c.rjust(w) for c, w in zip(cells, widths,
                                                                            strict=True))])

    out = [
        f"rollout {report.rollout}: {report.workflow}",
        f"owner {report.owner}; proof model {report.proof_model}"
        + (f"; review {report.review_cadence}" if report.review_cadence else ""),
        f"chain {report.chain_id}, escrow {report.escrow}, blocks {report.from_block}.."
        f"{report.to_block}, as of {_utc(report.now)}",
        f"expansion rule: {_rule_text(report.rule)}",
        "",
        line(*header),
        "  ".join(["-" * width0, *("-" * w for w in widths)]),
        *(line(*r) for r in rows),
        "",
    ]
    for s in st:
        to = f" -> {s.expansion.next_stage}" if s.expansion.next_stage else " (last stage)"
        out.append(f"{s.name}{to}: expansion rule {'MET' if s.expansion.met else 'NOT MET'}")
        out += [f"  [{'ok' if c.ok else 'no'}] {r}"
                for c, r in zip(s.expansion.checks, s.expansion.reasons, strict=True)]
    return "\n".join(out) + "\n"


# -- the plot ------------------------------------------------------------------------------
_COLOURS = {"pass": "tab:green", "partial": "tab:orange", "fail": "tab:red",
            "no_delivery": "tab:purple", "no_verdict": "tab:gray"}


def plot(report: Report, path: str | Path) -> Path:
    """A PNG with one panel per stage: the stage's outcomes over time, stacked (the top edge
    is the settled count), overturned verdicts marked with an x, and the pass rate of the
    verdicts so far against the rule's minimum on the right axis. Drawn on a Figure with the
    Agg canvas: no pyplot, no global backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    out = Path(path)
    n = max(1, len(report.stages))
    fig = Figure(figsize=(10, 2.8 * n), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, s in zip(axes, report.stages, strict=False):
        t0 = s.created_at
        t1 = max(report.now, t0 + 60)  # at least a minute wide: an empty range is refused
        pad = (t1 - t0) // 50 + 1  # so that outcomes at `now` stay visible
        start = datetime.fromtimestamp(t0, tz=UTC)
        end = datetime.fromtimestamp(t1 + pad, tz=UTC)
        verdict = "met" if s.expansion.met else "not met"
        ax.set_title(f"{s.name} ({s.kind.value}, pact {s.pact_id}): {s.jobs_settled} settled, "
                     f"pass rate {pct(s.pass_rate_bps)}, expansion rule {verdict}", fontsize=9)
        ax.set_ylabel("jobs settled")
        pts = s.outcomes
        xs = [start, *(datetime.fromtimestamp(p.at, tz=UTC) for p in pts), end]
        bottom = [0] * len(xs)
        for o in OUTCOMES:
            cum, top = 0, [bottom[0]]
            for k, p in enumerate(pts):
                cum += p.outcome == o
                top.append(bottom[k + 1] + cum)
            top.append(bottom[-1] + cum)
            if cum:
                ax.fill_between(xs, bottom, top, step="post", color=_COLOURS[o], alpha=0.75,
                                linewidth=0, label=o.replace("_", " "))
            bottom = top
        over = [(datetime.fromtimestamp(p.at, tz=UTC), k + 1)
                for k, p in enumerate(pts) if p.overturned]
        if over:
            ax.plot([x for x, _ in over], [y for _, y in over], "x", color="black",
                    markersize=9, markeredgewidth=2, label="overturned")
        if not pts:
            ax.text(0.5, 0.5, "no settled jobs yet", ha="center", va="center",
                    transform=ax.transAxes)
        rate = ax.twinx()
        rate.set_ylim(0, 105)
        rate.set_ylabel("pass rate %", fontsize=8)
        rate.axhline(report.rule.min_pass_rate_bps / 100, color="tab:blue", linestyle=":",
                     linewidth=1, label="rule's minimum")
        rx, ry, passed, verdicts = [], [], 0, 0
        for p in pts:
            if p.outcome in ("pass", "partial", "fail"):
                passed += p.outcome == "pass"
                verdicts += 1
                rx.append(datetime.fromtimestamp(p.at, tz=UTC))
                ry.append(passed * BPS // verdicts / 100)  # display only: bps to percent
        if rx:
            rate.step([*rx, end], [*ry, ry[-1]], where="post", color="tab:blue", linewidth=1.5,
                      label="pass rate")
        locator = AutoDateLocator()  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        ax.set_xlim(start, end)
        ax.set_ylim(0, max(1, len(pts)) * 1.15)
        ax.grid(True, alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        h2, l2 = rate.get_legend_handles_labels()
        # outside the panel, right of the rate axis: never over the data
        ax.legend(handles + h2, labels + l2, loc="upper left", bbox_to_anchor=(1.07, 1.0),
                  fontsize=7)
    fig.suptitle(f"rollout {report.rollout}: outcomes per stage", fontsize=11)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)
    return out


__all__ = [
    "BlockTimes", "Expansion", "ExpansionRule", "OutcomePoint", "Report", "Rollout", "RuleCheck",
    "Stage", "StageKind", "StageReport", "build_report", "duration", "load_rollout",
    "parse_rollout", "pct", "plot", "render_table", "units",
]

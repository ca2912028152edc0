"""The escrow as the contract tests call it: job fields filled in from the logs (ADR 011).

Every job call of the escrow takes the job's fields (types.JobFields), which the contract checks
against the one word it stores per job. A client rebuilds them from the job's logs
(pactbond.jobfields); so does this proxy, from the logs of every call made through it. Tests keep
the short forms, and the proxy inserts the fields after (job_id, terms):

    world.escrow.accept(jid, terms)            -> accept(jid, terms, fields)
    world.escrow.finalize(jid, terms)          -> finalize(jid, terms, fields, evidence)
    world.facet.settle_batch(pid, t, 0, items, sigs)
                                               -> settle_batch(pid, t, 0, [fields...], items, sigs)

`finalize` and `resolve` get, unless given, the first counted round-0 vote the proxy saw posted
(single or batched) as Feedback's evidence. `job=` passes other fields than the tracked ones (a
JobFields or its tuple; for settle_batch a list, one per run), and `prepare_calldata` inserts
them alike. `escrow.job(jid)` returns the old view's shape (job tuple, deliverable, first
round-0 evidence, round-0 lanes, round-1 lanes), decoded from the tracked fields and the stored
word (asserted to match), with VERDICT derived as the contract derives it; `median_score` is
computed from those lanes (the views are gone from the contract).

Calls made around the proxy (boa.env.raw_call, a mock contract calling in) are tracked by
passing their computation to `observe`. `get_logs` gives the last state-changing call's logs
(views in between do not replace them); `_computation` the last call's, a view included. The
world fixture rolls the tracker back with every boa.env.anchor (tests.contracts.conftest).
`.raw` is the list of underlying boa contracts (escrow, appeals facet, batch facet ABIs, all at
the escrow's address).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boa.contracts.event_decoder import RawLogEntry
from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic, to_checksum_address

from pactbond import eip712, jobfields
from pactbond.jobfields import JobFields
from pactbond.models import Vote, terms_hash

ARTIFACTS = Path(__file__).resolve().parents[2] / "src" / "pactbond" / "artifacts"
# job calls: (job_id, terms, *rest) -> (job_id, terms, fields, *rest)
JOB_CALLS = {"accept", "submit", "settle", "finalize", "cancel", "expire", "challenge", "appeal",
             "resolve"}
NO_EVIDENCE = ("0x" + "00" * 20, 0, b"\0" * 32, 0, False, [], b"")


def _event_abis() -> dict[int, dict[str, Any]]:
    out = {}
    for name in ("PactEscrow", "PactEscrowAppeals", "PactEscrowBatch"):
        for e in json.loads((ARTIFACTS / f"{name}.json").read_text())["abi"]:
            if e.get("type") == "event":
                out[int.from_bytes(event_abi_to_log_topic(e), "big")] = e
    return out


EVENTS = _event_abis()


def decode(topics: list[int], data: bytes) -> tuple[str, dict[str, Any]] | None:
    """(name, args) of one escrow log, from the artifacts' ABIs (None: not an escrow event)."""
    if not topics or topics[0] not in EVENTS:
        return None
    e = EVENTS[topics[0]]
    idx = [i for i in e["inputs"] if i["indexed"]]
    rest = [i for i in e["inputs"] if not i["indexed"]]
    args: dict[str, Any] = {}
    for i, t in zip(idx, topics[1:], strict=True):
        (args[i["name"]],) = abi_decode([i["type"]], t.to_bytes(32, "big"))
    for i, v in zip(rest, abi_decode([_abi_type(i) for i in rest], data), strict=True):
        args[i["name"]] = v
    return e["name"], args


def _abi_type(i: dict[str, Any]) -> str:
    if i["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in i["components"]) + ")" + i["type"][5:]
    return str(i["type"])


@dataclass
class Tracker:
    """Job fields and posted votes, from the logs and arguments of calls made through Escrow."""

    fields: dict[int, JobFields] = field(default_factory=dict)
    first_r0: dict[int, tuple[str, bytes]] = field(default_factory=dict)  # (member, evidence)
    signed: dict[tuple[int, str], tuple[Any, ...]] = field(default_factory=dict)  # evidence args
    thresholds: dict[int, int] = field(default_factory=dict)  # committee version -> threshold
    terms: dict[int, bytes] = field(default_factory=dict)  # pact id -> terms hash (ADR 012)

    def observe(self, logs: list[Any]) -> None:
        for e in sorted(logs, key=lambda x: x[0]):
            _, _address, topics, data = e
            got = decode(list(topics), bytes(data))
            if got is None:
                continue
            name, args = got
            jid = args.get("job_id")
            if name in jobfields.EVENTS:
                f = jobfields.apply(self.fields.get(jid), name, args)
                if f is not None:
                    self.fields[jid] = f
            elif name == "PactCreated":
                h = terms_hash(args["terms"])
                assert h == args["terms_hash"], "PactCreated: terms_hash is not the terms' hash"
                self.terms[args["pact_id"]] = h
            elif name == "VoteCounted" and args["round"] == 0 and jid not in self.first_r0:
                self.first_r0[jid] = (to_checksum_address(args["member"]), args["evidence_hash"])

    def snapshot(self) -> tuple[dict[Any, Any], ...]:
        return (dict(self.fields), dict(self.first_r0), dict(self.signed), dict(self.thresholds),
                dict(self.terms))

    def restore(self, snap: tuple[dict[Any, Any], ...]) -> None:
        self.fields, self.first_r0, self.signed, self.thresholds, self.terms = (
            dict(d) for d in snap)

    def matches(self, jid: int, word: int) -> bool:
        """The tracked fields of `jid` hash, with its pact's terms, to the stored `word`."""
        f = self.fields[jid]
        return f.matches(jid, word, self.terms[f.pact_id])

    def of(self, jid: int) -> tuple[Any, ...]:
        f = self.fields.get(jid)
        return f.as_tuple() if f is not None else (0, 0, 0, b"\0" * 32, 0)

    def evidence(self, jid: int) -> tuple[Any, ...]:
        """The first counted round-0 vote, as an Evidence argument (none if not seen)."""
        first = self.first_r0.get(jid)
        if first is None:
            return NO_EVIDENCE
        return self.signed.get((jid, first[0]), NO_EVIDENCE)


class Escrow:
    """The escrow and its facets at one address, with job fields filled in (module doc)."""

    def __init__(self, *contracts: Any, tracker: Tracker | None = None) -> None:
        self.raw = list(contracts)
        self.address = contracts[0].address
        self.jobs = tracker or Tracker()
        self._last = contracts[0]  # the contract (ABI) of the last call, a view included
        self._last_tx: tuple[Any, Any] | None = None  # (contract, computation): last non-view

    def observe(self, computation: Any) -> None:
        """Track the job fields a call made around the proxy changed (boa.env.raw_call's
        computation, or a mock contract's call into the escrow)."""
        self.jobs.observe(list(computation.get_raw_log_entries()))

    def get_logs(self, *args: Any, **kw: Any) -> list[Any]:
        """The last state-changing call's logs (views in between do not replace them, as they
        did not when the escrow and its facet were two objects), each decoded with whichever of
        the three ABIs knows it."""
        kw.setdefault("strict", False)
        if self._last_tx is None:
            return []
        c, comp = self._last_tx
        if not args and "computation" not in kw:
            kw["computation"] = comp
        return [self.decode_log(e) if isinstance(e, RawLogEntry) else e
                for e in c.get_logs(*args, **kw)]

    def decode_log(self, e: Any) -> Any:
        for c in self.raw:
            try:
                return c.decode_log(e)
            except (ValueError, KeyError):
                continue
        return e

    def _find(self, name: str) -> Any:
        for c in self.raw:
            if hasattr(c, name):
                return c
        raise AttributeError(name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name == "_computation":  # the last call's, whichever ABI made it
            return self._last._computation
        c = self._find(name)
        fn = getattr(c, name)
        if name in JOB_CALLS or name == "settle_batch":
            return JobCall(self, c, name, fn)
        if callable(fn) and hasattr(fn, "prepare_calldata"):
            return PlainCall(self, c, fn)
        return fn

    def _run(self, c: Any, fn: Any, a: list[Any], kw: dict[str, Any], mutable: bool) -> Any:
        self._last = c
        try:
            return fn(*a, **kw)
        finally:
            if mutable:  # a revert too: its (empty) logs are the last call's
                self._last_tx = (c, c._computation)

    def args(self, name: str, args: tuple[Any, ...], job: Any = None) -> list[Any]:
        """The full arguments of job call `name` from its short form (module doc). `job`:
        fields to pass instead of the tracked ones (a JobFields or its tuple; for settle_batch
        the list of runs' fields)."""
        a = list(args)
        if name in JOB_CALLS and len(a) >= 2:
            jid = a[0]
            rest = a[2:]
            if name in ("finalize", "resolve") and not rest:
                rest = [self.jobs.evidence(jid)]
            fields = self.jobs.of(jid) if job is None else _tuple(job)
            return [jid, a[1], fields, *rest]
        if name == "settle_batch" and len(a) == 5:
            runs = self._runs(a[3]) if job is None else [_tuple(f) for f in job]
            return [*a[:3], runs, *a[3:]]
        return a

    def _after(self, c: Any, name: str, a: list[Any]) -> None:
        """Track what a call that went through changed: fields from its logs, posted votes."""
        self.jobs.observe(c._get_logs(c._computation, True))
        if name == "settle":
            self._note_votes(a[0], a[1], a[3], 0)
        elif name == "settle_batch":
            self._note_batch(a[1], a[2], a[4], a[5])

    def _runs(self, items: list[Any]) -> list[tuple[Any, ...]]:
        runs, last = [], None
        for it in items:
            if it[0] != last:
                runs.append(self.jobs.of(it[0]))
                last = it[0]
        return runs

    def _note_votes(self, jid: int, _terms: Any, votes: list[Any], round_: int) -> None:
        if round_ != 0:
            return
        for m, s, ev, dl, sig in votes:
            self.jobs.signed.setdefault((jid, to_checksum_address(m)),
                                        (m, s, ev, dl, False, [], sig))

    def _note_batch(self, terms: Any, round_: int, items: list[Any], sigs: list[Any]) -> None:
        if round_ != 0:
            return
        spec = terms[3]
        for member, _root, dl, sig in sigs:
            mine = [it for it in items if to_checksum_address(it[1]) == to_checksum_address(member)]
            leaves = [eip712.vote_struct_hash(Vote(
                job_id=it[0], deliverable_hash=self.jobs.fields[it[0]].deliverable,
                spec_hash=spec, score_bps=it[2], evidence_hash=it[3], round=0, deadline=dl))
                for it in mine]
            for k, it in enumerate(mine):
                self.jobs.signed.setdefault(
                    (it[0], to_checksum_address(member)),
                    (member, it[2], it[3], dl, True, eip712.merkle_proof(leaves, k), sig))

    # -- the old `job` view's shape, for tests -----------------------------------------------
    def job(self, jid: int) -> tuple[Any, ...]:
        """(job tuple of 12, deliverable, first round-0 evidence, round-0 lanes, round-1 lanes)."""
        f = self.jobs.fields.get(jid)
        word, ext = self.job_word(jid)
        if f is None:
            return ((to_checksum_address("0x" + "00" * 20), 0, False, 0, 0, 0,
                     to_checksum_address("0x" + "00" * 20), 0, 0, 0, 0, 0),
                    b"\0" * 32, b"\0" * 32, 0, 0)
        assert self.jobs.matches(jid, word), f"job {jid}: tracked fields do not match the stored word"
        lanes = jobfields.lanes_of(word, ext)
        challenged = f.state == jobfields.CHALLENGED or f.r0 != 0
        r0, r1 = (f.r0, lanes) if challenged else (lanes, 0)
        state = f.state
        if state == jobfields.SUBMITTED:
            threshold = self._threshold(f.committee_version)
            if bin(jobfields.voters(lanes)).count("1") >= threshold:
                state = jobfields.VERDICT
        j = (f.buyer, state, f.by_agent, f.pact_id, f.committee_version, f.appeal_version,
             f.agent, f.reserved, f.deadline, f.close_at, f.value, f.fee)
        ev = self.jobs.first_r0.get(jid, ("", b"\0" * 32))[1]
        return j, f.deliverable, ev, r0, r1

    def _threshold(self, version: int) -> int:
        """A version's threshold (fixed for the version: cached, rolled back with anchors)."""
        if version not in self.jobs.thresholds:
            self.jobs.thresholds[version] = int(self.registry.roster(version, False, False)[1])
        return self.jobs.thresholds[version]

    def median_score(self, jid: int, round_: int) -> int:
        _, _, _, r0, r1 = self.job(jid)
        lanes = r1 if round_ == 1 else r0
        xs = sorted(jobfields.scores(lanes).values())
        if not xs:
            raise AssertionError("vote: no votes")
        n = len(xs)
        return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) // 2

    registry: Any = None  # set by the world: the threshold of a version, for VERDICT


def _tuple(f: Any) -> tuple[Any, ...]:
    return f.as_tuple() if isinstance(f, JobFields) else tuple(f)


class PlainCall:
    """A call that takes no job fields: its logs are tracked all the same (open)."""

    def __init__(self, proxy: Escrow, contract: Any, fn: Any) -> None:
        self._proxy, self._contract, self._fn = proxy, contract, fn

    def __call__(self, *args: Any, **kw: Any) -> Any:
        mutable = self._fn.func_t.is_mutable
        out = self._proxy._run(self._contract, self._fn, list(args), kw, mutable)
        if mutable:
            self._proxy._after(self._contract, "", list(args))  # open's JobOpened, for one
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fn, name)


class JobCall(PlainCall):
    """A job call: the tracked fields (and Feedback evidence) inserted, its logs tracked.
    `job=` passes other fields (a test of stale fields); `prepare_calldata` inserts alike."""

    def __init__(self, proxy: Escrow, contract: Any, name: str, fn: Any) -> None:
        super().__init__(proxy, contract, fn)
        self._name = name

    def __call__(self, *args: Any, job: Any = None, **kw: Any) -> Any:
        a = self._proxy.args(self._name, args, job)
        out = self._proxy._run(self._contract, self._fn, a, kw, True)
        self._proxy._after(self._contract, self._name, a)
        return out

    def prepare_calldata(self, *args: Any, job: Any = None, **kw: Any) -> bytes:
        return bytes(self._fn.prepare_calldata(*self._proxy.args(self._name, args, job), **kw))

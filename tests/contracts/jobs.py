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
(single or batched) as Feedback's evidence. `escrow.job(jid)` returns the old view's shape
(job tuple, deliverable, first round-0 evidence, round-0 lanes, round-1 lanes), decoded from the
tracked fields and the stored word, with VERDICT derived as the contract derives it. `.raw` is
the list of underlying boa contracts, for calls that must pass their own fields.
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
from pactbond.models import Vote

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
            elif name == "VoteCounted" and args["round"] == 0 and jid not in self.first_r0:
                self.first_r0[jid] = (to_checksum_address(args["member"]), args["evidence_hash"])

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
        self._last = contracts[0]

    def get_logs(self, *args: Any, **kw: Any) -> list[Any]:
        """The last call's logs, each decoded with whichever of the three ABIs knows it."""
        kw.setdefault("strict", False)
        return [self.decode_log(e) if isinstance(e, RawLogEntry) else e
                for e in self._last.get_logs(*args, **kw)]

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
        c = self._find(name)
        fn = getattr(c, name)
        if name == "job":
            return fn
        if not callable(fn):
            return fn

        def call(*args: Any, **kw: Any) -> Any:
            a = list(args)
            if name in JOB_CALLS and len(a) >= 2:
                jid = a[0]
                rest = a[2:]
                if name in ("finalize", "resolve") and not rest:
                    rest = [self.jobs.evidence(jid)]
                a = [jid, a[1], self.jobs.of(jid), *rest]
            elif name == "settle_batch" and len(a) == 5:
                a = [*a[:3], self._runs(a[3]), *a[3:]]
            self._last = c
            out = fn(*a, **kw)
            self.jobs.observe(c._get_logs(c._computation, True))
            if name in ("settle", "appeal"):
                self._note_votes(a[0], a[1], a[3], 0 if name == "settle" else 1)
            elif name == "settle_batch":
                self._note_batch(a[1], a[2], a[4], a[5])
            return out

        return call

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
        assert f.matches(jid, word), f"job {jid}: tracked fields do not match the stored word"
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
        reg = self.registry
        return int(reg.roster(version, False)[1])

    def median_score(self, jid: int, round_: int) -> int:
        _, _, _, r0, r1 = self.job(jid)
        lanes = r1 if round_ == 1 else r0
        xs = sorted(jobfields.scores(lanes).values())
        if not xs:
            raise AssertionError("vote: no votes")
        n = len(xs)
        return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) // 2

    registry: Any = None  # set by the world: the threshold of a version, for VERDICT

"""Batch posting: when several of this oracle's votes of one pact and round are ready at once,
one `settle_batch` call posts them all under one VoteBatch signature (DESIGN "Batches").

The batch's votes are this oracle's own stored votes (same score and evidence; the store's
trigger refuses any other), signed again as a Merkle root with the batch's deadline, the
earliest of the jobs' deadlines, so every item counts under the single-vote rules.

The escrow rebuilds the signed root from the call's items, in call order (ADR 011: no proofs),
so one call carries exactly the votes of the batch it signs, in the batch's order; a group too
big for one call is split before signing (one signature per part). Each item's job fields go
in `jobs`, in item order (one vote per job, so one entry per item).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pactbond.calls import Call
from pactbond.client import Job, Pactbond
from pactbond.models import PactTerms, Vote
from pactbond.oracle.store import Store, StoredVote
from pactbond.votes import MAX_BATCH, VoteBatch

MIN_BATCH = 2  # one ready vote goes alone (with peers' votes) through settle/appeal


@dataclass(frozen=True)
class Ready:
    """A stored vote ready to post, with its job and pact as read this tick."""

    intent_id: int
    vote: StoredVote
    job: Job
    terms: PactTerms


def groups(ready: Sequence[Ready], limit: int = MAX_BATCH) -> list[list[Ready]]:
    """Ready votes by (pact, round), each group cut to at most `limit` items; only groups of
    at least MIN_BATCH are batched."""
    by: dict[tuple[int, int], list[Ready]] = {}
    for r in ready:
        by.setdefault((r.job.pact_id, r.vote.round), []).append(r)
    out: list[list[Ready]] = []
    for items in by.values():
        items.sort(key=lambda r: r.job.id)
        for i in range(0, len(items), limit):
            chunk = items[i : i + limit]
            if len(chunk) >= MIN_BATCH:
                out.append(chunk)
    return out


def batch_call(pb: Pactbond, store: Store, member: str, group: Sequence[Ready],
               sign: Callable[[dict[str, object]], bytes]) -> Call:
    """Sign (once, through the store) a VoteBatch over the group's stored votes and encode the
    settle_batch call posting exactly those votes, in the signed order."""
    round_ = group[0].vote.round
    deadline = min(r.job.deadline for r in group)
    batch = VoteBatch(round=round_, deadline=deadline, votes=[
        Vote(job_id=r.job.id, deliverable_hash=r.job.deliverable_hash,
             spec_hash=r.terms.spec_hash, score_bps=r.vote.score,
             evidence_hash=r.vote.evidence_hash, round=round_, deadline=deadline)
        for r in group])
    typed = batch.typed_data(pb.chain_id, pb.escrow.address)
    signature = store.sign_batch(batch.root, round_, deadline, member,
                                 [(r.job.id, r.vote.score, r.vote.evidence_hash) for r in group],
                                 lambda: sign(typed))
    # the batch's votes in its order: the escrow rebuilds the root from them (VoteBatch refuses
    # two votes of one job, so each item is its job's whole run and `jobs` pairs with `items`)
    items = [(v.job_id, member, v.score_bps, v.evidence_hash) for v in batch.votes]
    jobs = [r.job.fields.as_tuple() for r in group]
    sigs = [(member, batch.root, deadline, signature)]
    return pb._esc.call("settle_batch", group[0].job.pact_id, group[0].terms.as_tuple(), round_,
                        jobs, items, sigs)

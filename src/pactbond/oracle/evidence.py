"""Evidence packets: canonical JSON, named by the keccak-256 of their bytes (the vote's
evidenceHash). A packet records the inputs (job, deliverable, spec), the evaluator (name,
version, deterministic), the per-check results and outputs, the score and the times. When the
evaluator keeps something hidden (a hidden reference set), the packet carries only the hash of
the reveal document, which is published once the job has ended."""

from __future__ import annotations

import json
from typing import Any

from pactbond.oracle.evaluators.base import Evaluator, Outcome
from pactbond.oracle.spec import Spec, content_hash, hex32


def canonical(doc: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same document always has the same bytes."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build(
    *, job_id: int, round_: int, chain_id: int, escrow: str, member: str,
    deliverable_hash: bytes, deliverable_size: int | None, spec: Spec, plugin: Evaluator | None,
    outcome: Outcome, chain_time: int, started: int, finished: int,
) -> tuple[bytes, bytes, bytes | None, bytes | None]:
    """(packet bytes, packet hash, reveal bytes or None, reveal hash or None)."""
    reveal = reveal_hash = None
    if outcome.hidden is not None:
        reveal = canonical({"pactbond_reveal": 1, "job_id": job_id, "round": round_,
                            "spec_hash": hex32(spec.hash), **outcome.hidden})
        reveal_hash = content_hash(reveal)
    packet = canonical({
        "pactbond_evidence": 1,
        "chain_id": chain_id,
        "escrow": escrow,
        "job_id": job_id,
        "round": round_,
        "member": member,
        "inputs": {
            "deliverable_hash": hex32(deliverable_hash),
            "deliverable_size": deliverable_size,
            "spec_hash": hex32(spec.hash),
            "spec_name": spec.name,
        },
        "evaluator": {
            "name": plugin.name if plugin else spec.evaluator.name,
            "version": plugin.version if plugin else spec.evaluator.version,
            "deterministic": plugin.deterministic if plugin else True,
        },
        "score_bps": outcome.score_bps,
        "error": outcome.error,
        "checks": [c.model_dump() for c in outcome.checks],
        "outputs": outcome.outputs,
        "reveal_hash": hex32(reveal_hash) if reveal_hash else None,
        "times": {"chain_time": chain_time, "started": started, "finished": finished},
    })
    return packet, content_hash(packet), reveal, reveal_hash

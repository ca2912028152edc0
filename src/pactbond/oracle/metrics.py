"""Prometheus metrics of one oracle process (its own registry, served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.jobs_seen = Counter("pactbond_jobs_seen", "jobs followed", registry=r)
        self.evaluated = Counter("pactbond_jobs_evaluated", "evaluations stored", registry=r)
        self.signed = Counter("pactbond_votes_signed", "votes signed and stored", registry=r)
        self.submitted = Counter("pactbond_txs_submitted", "transactions broadcast", registry=r)
        self.settled = Counter("pactbond_jobs_settled", "followed jobs that ended", registry=r)
        self.counted = Counter("pactbond_votes_counted", "own votes counted on-chain", registry=r)
        self.failures = Counter("pactbond_failures", "failures by kind", ["kind"], registry=r)
        # calls refused as "escrow: stale job fields" (the job moved meanwhile) and rebuilt
        self.stale = Counter("pactbond_stale_calls", "calls rebuilt after the job moved",
                             ["kind"], registry=r)
        self.alerts = Counter("pactbond_alerts", "alerts raised by kind", ["kind"], registry=r)
        self.queue_depth = Gauge("pactbond_queue_depth", "followed jobs not yet done", registry=r)
        self.in_flight = Gauge("pactbond_txs_in_flight", "transactions not yet confirmed",
                               registry=r)
        self.balance = Gauge("pactbond_signer_balance_wei", "the signer's balance", registry=r)
        self.head = Gauge("pactbond_head_block", "the node's latest block", registry=r)
        self.cursor = Gauge("pactbond_cursor_block", "the last block watched", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)

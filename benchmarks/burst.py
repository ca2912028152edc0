"""A burst of submitted jobs drained by a 2-of-3 committee of real oracle processes on a local
anvil with 1 s blocks (issue 7 / RELIABILITY F18): jobs evaluated with the reference-answers
evaluator, signed, posted (batched when several are ready) and settled. Also the latency of one
job from submission to verdict, in blocks, with a healthy committee.

    .venv/bin/python benchmarks/burst.py [--jobs 1000] [--runs 1]

Writes benchmarks/results/burst.json: jobs, seconds (submission of the last job to the last
settlement), max transactions in flight per oracle, nonce gaps, and the latency.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from web3 import Web3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.oracle.harness import (  # noqa: E402
    OracleProc,
    oracle_config,
    ports,
    track_fields,
    write_doc,
)

from pactbond import JobState, KeyWallet, Pactbond, PactTerms  # noqa: E402
from pactbond.deploy import deploy  # noqa: E402
from pactbond.devnet import Devnet, dev_account  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
E18 = 10**18
HOUR = 3600
COMMITTEE, APPEAL, BUYER, AGENTS = [4, 5, 6], [7, 8, 9], 2, list(range(10, 20))


def send_all(w3: Web3, key: Any, calls: list[tuple[str, bytes, int]], gas: int) -> list[Any]:
    """Raw transactions with consecutive nonces, not waiting for each (a burst); their
    receipts."""
    nonce = w3.eth.get_transaction_count(key.address, "pending")
    base = int(w3.eth.get_block("latest").get("baseFeePerGas") or 0)
    hashes = []
    for to, data, value in calls:
        tx = {"to": to, "data": data, "value": value, "nonce": nonce, "gas": gas,
              "chainId": w3.eth.chain_id, "maxFeePerGas": 4 * base + 10**9,
              "maxPriorityFeePerGas": 10**9}
        hashes.append(w3.eth.send_raw_transaction(key.sign_transaction(tx).raw_transaction))
        nonce += 1
    receipts = []
    for h in hashes:
        r = w3.eth.wait_for_transaction_receipt(h, timeout=300, poll_latency=0.2)
        assert r["status"] == 1, r
        receipts.append(r)
    return receipts


def settled_count(pb: Pactbond, from_block: int, first: int, last: int) -> int:
    """How many of jobs first..last have settled (their JobSettled events, one log query)."""
    return len({e.job_id for e in pb.events(from_block, names="JobSettled")  # type: ignore[attr-defined]
                if first <= e.job_id <= last})  # type: ignore[attr-defined]


def run(n_jobs: int, workdir: Path) -> dict[str, Any]:
    with Devnet(accounts=20, block_time=1) as net:
        w3 = Web3(Web3.HTTPProvider(net.url))
        manifest = deploy(w3, net.account(0), out_dir=None, expected_chain_id=net.chain_id)
        mpath = manifest.save(workdir / "manifest.json")
        c = {i: Pactbond.connect(net.url, manifest, KeyWallet(dev_account(i)))
             for i in [0, 1, BUYER, *COMMITTEE, *APPEAL, *AGENTS]}
        penalty = 10**15
        cid = c[1].create_committee([dev_account(i).address for i in COMMITTEE], 2, E18, penalty)
        aid = c[1].create_committee([dev_account(i).address for i in APPEAL], 2, E18, penalty)
        for i in COMMITTEE + APPEAL:
            c[i].accept_version(c[i].current_version(cid if i in COMMITTEE else aid))
            c[i].stake(E18 + (n_jobs + 10) * penalty, evaluator=True)
        docs = workdir / "docs"
        ref = write_doc(docs, {"items": [{"id": f"q{k}", "question": f"{k} + {k}?",
                                          "answer": str(2 * k)} for k in range(10)]})
        spec = write_doc(docs, {"pactbond_spec": 1, "name": "burst",
                                "evaluator": {"name": "reference", "version": "1"},
                                "thresholds": {"fail_below_bps": 5000, "pass_at_bps": 9000},
                                "params": {"reference": "0x" + ref.hex()}})
        value = 10**12
        terms = PactTerms(committee_id=cid, appeal_committee_id=aid, spec_hash=spec,
                          fail_below_bps=5000, pass_at_bps=9000, shadow=True,
                          accept_window=HOUR, work_window=HOUR, eval_window=HOUR,
                          cap_initial=10**24, cap_max=10**24)
        pid = c[0].create_pact(terms)
        c[1].approve_pact(cid, pid)
        c[1].approve_pact(aid, pid)
        # the oracles
        port = dict(zip(COMMITTEE, ports(3), strict=True))
        peers = {dev_account(i).address: f"http://127.0.0.1:{p}" for i, p in port.items()}
        procs = [OracleProc(f"oracle{i}", workdir, oracle_config(
            net.url, mpath, [cid], "ORACLE_KEY", workdir / f"oracle{i}.db", port[i], peers,
            docs, confirmations=1, poll_interval=0.2, max_in_flight=8, log_level="WARNING"),
            env={"ORACLE_KEY": "0x" + bytes(dev_account(i).key).hex()}) for i in COMMITTEE]
        for p in procs:
            p.start()
        try:
            # latency: one job, submission block -> verdict block
            esc = c[BUYER]._esc
            jid = c[BUYER].open_job(pid, c[AGENTS[0]].address, value)
            c[AGENTS[0]].accept(jid)
            answers = json.dumps({"answers": {f"q{k}": str(2 * k) for k in range(10)}}).encode()
            for p in procs:
                requests.post(f"{p.api}/deliverables", data=answers, timeout=10)
            h = Web3.keccak(answers)
            sub = c[AGENTS[0]].submit(jid, h)
            while c[BUYER].job(jid).state != JobState.SETTLED:
                time.sleep(0.1)
            verdict = next(c[BUYER].events(sub["blockNumber"], names="VerdictReached",
                                           job_id=jid))
            latency_blocks = verdict.block_number - sub["blockNumber"]
            # the burst: open, accept (10 agents) and submit n_jobs jobs
            first = c[BUYER].job_count() + 1
            cv, av = c[BUYER].current_version(cid), c[BUYER].current_version(aid)
            opens = [(esc.address, esc.call("open", terms.as_tuple(), pid,
                                            dev_account(AGENTS[k % 10]).address, value, cv,
                                            av).data, value) for k in range(n_jobs)]
            # every job call passes the job's fields (ADR 011): folded from the receipts' logs
            fields = track_fields(c[BUYER], send_all(w3, dev_account(BUYER), opens, 400_000))
            last = first + n_jobs - 1
            for a_i, a in enumerate(AGENTS):
                mine = [j for j in range(first, last + 1) if (j - first) % 10 == a_i]
                track_fields(c[BUYER], send_all(w3, dev_account(a), [(esc.address, esc.call(
                    "accept", j, terms.as_tuple(), fields[j].as_tuple()).data, 0)
                    for j in mine], 300_000), fields)
            submits = {a: [(esc.address, esc.call("submit", j, terms.as_tuple(),
                                                  fields[j].as_tuple(), h, "").data, 0)
                           for j in range(first, last + 1) if (j - first) % 10 == a_i]
                       for a_i, a in enumerate(AGENTS)}
            t0 = time.monotonic()
            from_block = w3.eth.block_number
            for a in AGENTS:
                send_all(w3, dev_account(a), submits[a], 300_000)
            t_submitted = time.monotonic() - t0
            while settled_count(c[BUYER], from_block, first, last) < n_jobs:
                time.sleep(1)
                if time.monotonic() - t0 > 1200:
                    raise SystemExit("burst not drained in 20 minutes")
            seconds = time.monotonic() - t0
            time.sleep(3)  # let each oracle record its last receipts
            gaps = 0
            for i in COMMITTEE:
                chain = w3.eth.get_transaction_count(dev_account(i).address)
                db = sqlite3.connect(workdir / f"oracle{i}.db")
                used = {n for (n,) in db.execute("SELECT nonce FROM txs") if n < chain}
                db.close()
                # nonces 0 and 1 went to accept_version and stake, before the service ran
                gaps += chain - 2 - len(used)
            return {"jobs": n_jobs, "seconds": round(seconds, 1),
                    "submit_seconds": round(t_submitted, 1),
                    "latency_blocks": latency_blocks, "nonce_gaps": gaps}
        finally:
            for p in procs:
                p.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="pactbond-burst-") as wd:
            runs.append(run(args.jobs, Path(wd)))
            print(json.dumps(runs[-1]))
    out = {"jobs": args.jobs, "seconds": statistics.median(r["seconds"] for r in runs),
           "latency_blocks": max(r["latency_blocks"] for r in runs),
           "nonce_gaps": sum(r["nonce_gaps"] for r in runs), "runs": runs,
           "target": {"seconds": 60, "latency_blocks": 3},
           "machine": {"python": platform.python_version(), "cpu": platform.machine()}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "burst.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"burst: {args.jobs} jobs drained in {out['seconds']} s (target 60 s); "
          f"submission to verdict {out['latency_blocks']} blocks (target 3); "
          f"nonce gaps {out['nonce_gaps']}")


if __name__ == "__main__":
    main()

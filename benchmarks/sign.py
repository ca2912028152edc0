"""Vote signing throughput on one core (PERFORMANCE / issue 7): EIP-712 votes signed with
coincurve on precomputed domain and type hashes, checked byte for byte against eth-account's
`sign_typed_data` on every benchmarked vote. Writes benchmarks/results/sign.json (median of
several runs, and the machine).

    .venv/bin/python benchmarks/sign.py [--votes 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import time
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_typed_data

from pactbond import eip712
from pactbond.models import Vote

RESULTS = Path(__file__).resolve().parent / "results"
KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")  # anvil #0
ESCROW = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
CHAIN_ID = 31337


def random_votes(n: int) -> list[Vote]:
    return [Vote(job_id=secrets.randbelow(2**64), deliverable_hash=secrets.token_bytes(32),
                 spec_hash=secrets.token_bytes(32), score_bps=secrets.randbelow(10_001),
                 evidence_hash=secrets.token_bytes(32), round=secrets.randbelow(2),
                 deadline=secrets.randbelow(2**40)) for _ in range(n)]


def run(votes: list[Vote]) -> tuple[float, list[bytes]]:
    signer = eip712.VoteSigner(KEY, CHAIN_ID, ESCROW)
    t0 = time.perf_counter()
    sigs = [signer.sign(v) for v in votes]
    return time.perf_counter() - t0, sigs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--votes", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    votes = random_votes(args.votes)
    rates, sigs = [], []
    for _ in range(args.runs):
        secs, sigs = run(votes)
        rates.append(len(votes) / secs)
    acct = Account.from_key(KEY)
    t0 = time.perf_counter()
    mismatches = sum(
        bytes(acct.sign_message(encode_typed_data(
            full_message=eip712.typed_data(v, CHAIN_ID, ESCROW))).signature) != s
        for v, s in zip(votes, sigs, strict=True))
    ref_rate = len(votes) / (time.perf_counter() - t0)
    out = {
        "votes_per_s": int(statistics.median(rates)),
        "runs": [int(r) for r in rates],
        "votes": len(votes),
        "identical_to_eth_account": mismatches == 0,
        "mismatches": mismatches,
        "eth_account_votes_per_s": int(ref_rate),
        "target_votes_per_s": 10_000,
        "machine": {"python": platform.python_version(), "cpu": platform.processor()
                    or platform.machine(), "cores_used": 1},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sign.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"vote signing: {out['votes_per_s']:,} votes/s on one core (median of {args.runs} "
          f"runs of {len(votes):,}; target 10,000); eth-account signs {int(ref_rate):,}/s; "
          f"byte-identical on all {len(votes):,}: {mismatches == 0}")
    if mismatches:
        raise SystemExit(f"{mismatches} signatures differ from eth-account's")


if __name__ == "__main__":
    main()

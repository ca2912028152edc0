"""Summarise a stateful-fuzz report (PACTBOND_FUZZ_REPORT): each rule's share of all steps, per
machine, and whether every rule was hit in at least 1 % of steps (RELIABILITY C3); below it,
how many of each contract call the rules made, accepted and refused.

    python scripts/fuzz_report.py FILE [--min-share-bps 100]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path


def parse(text: str) -> dict[str, tuple[Counter[str], Counter[str], Counter[str]]]:
    """machine -> (rule runs, accepted calls, refused calls), summed over the report's runs."""
    machines: dict[str, tuple[Counter[str], Counter[str], Counter[str]]] = {}
    current = None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            current = machines.setdefault(line.split(" (")[0], (Counter(), Counter(), Counter()))
            continue
        m = re.match(r"\s+(\d+)\s+(.+)$", line)
        if m is None or current is None:
            continue
        n, what = int(m.group(1)), m.group(2)
        if what.startswith("rule "):
            current[0][what[5:]] += n
        elif what == "(sequences)":
            current[0]["(sequences)"] += n
        elif (call := re.match(r"(.+?): (ok|refused)", what)) is not None:
            current[1 if call.group(2) == "ok" else 2][call.group(1)] += n
    return machines


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("report", type=Path)
    ap.add_argument("--min-share-bps", type=int, default=100)
    args = ap.parse_args()
    machines = parse(args.report.read_text())
    ok = bool(machines)
    total_steps = total_sequences = 0
    for machine, (rules, accepted, refused) in machines.items():
        sequences = rules.pop("(sequences)", 0)
        steps = sum(rules.values())
        total_steps, total_sequences = total_steps + steps, total_sequences + sequences
        ok &= steps > 0
        print(f"{machine}: {steps:,} steps in {sequences:,} sequences")
        for rule, n in sorted(rules.items(), key=lambda kv: -kv[1]):
            share = 10_000 * n // steps if steps else 0
            low = share < args.min_share_bps
            ok &= not low
            print(f"  rule {rule:<26} {n:>9,}  {share // 100:>3}.{share % 100:02d} %"
                  + ("  < minimum" if low else ""))
        print("  contract calls                accepted   refused")
        calls = accepted.keys() | refused.keys()
        for call in sorted(calls, key=lambda c: -(accepted[c] + refused[c])):
            print(f"    {call:<28} {accepted[call]:>9,} {refused[call]:>9,}")
    print(f"all machines: {total_steps:,} steps in {total_sequences:,} sequences")
    print(f"every rule in >= {args.min_share_bps / 100:.2f} % of steps: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

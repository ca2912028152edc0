"""Summarise a stateful-fuzz report (PACTBOND_FUZZ_REPORT): each rule's share of all steps, per
machine, and whether every rule was hit in at least 1 % of steps (RELIABILITY C3).

    python scripts/fuzz_report.py FILE [--min-share-bps 100]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path


def parse(text: str) -> dict[str, Counter[str]]:
    machines: dict[str, Counter[str]] = {}
    current: Counter[str] | None = None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            name = line.split(" (")[0]
            current = machines.setdefault(name, Counter())
            continue
        m = re.match(r"\s+(\d+)\s+(.+?): (ok|refused)", line)
        if m and current is not None:  # "rule: ok" / "rule: refused (...)"; money paths apart
            current[m.group(2).strip()] += int(m.group(1))
    return machines


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("report", type=Path)
    ap.add_argument("--min-share-bps", type=int, default=100)
    args = ap.parse_args()
    ok = True
    for machine, rules in parse(args.report.read_text()).items():
        total = sum(rules.values())
        print(f"{machine}: {total:,} steps")
        for rule, n in sorted(rules.items(), key=lambda kv: -kv[1]):
            share = 10_000 * n // total if total else 0
            low = share < args.min_share_bps
            ok &= not low
            print(f"  {rule:<28} {n:>9,}  {share // 100:>3}.{share % 100:02d} %"
                  + ("  < minimum" if low else ""))
    print(f"every rule in >= {args.min_share_bps / 100:.2f} % of steps: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Gas per contract source line for one `make bench-gas` operation (how ADR 012 found its gap).

Runs bench-gas's scenario on a fresh devnet started with `--steps-tracing`, traces the chosen
operation's transaction (`debug_traceTransaction`, every opcode's gas) and maps each program
counter of the chosen call depth to its source line with `vyper -f source_map_runtime`. Depth 1
is the called contract (PactEscrow); PactEscrow's facets run one delegatecall deeper each
(PactEscrowAppeals 2, PactEscrowBatch 3), and a registry call one deeper than its caller.
A CALL-family opcode is charged its own access cost only: what it runs shows at its depth.

    .venv/bin/python benchmarks/gas_lines.py settle_2of3
    .venv/bin/python benchmarks/gas_lines.py settle_2of3 --contract PactRegistry --depth 2
    .venv/bin/python benchmarks/gas_lines.py batch --contract PactEscrowBatch --depth 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import gas as bench

CONTRACTS = bench.ROOT / "contracts"
CALLS = {"CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"}


def source_map(contract: str) -> tuple[dict[int, int], dict[int, int], dict[int, Path]]:
    """(pc -> line, pc -> source id, source id -> file) of the runtime code."""
    def vyper(fmt: str) -> Any:
        exe = Path(sys.executable).with_name("vyper")
        return json.loads(subprocess.run([str(exe), "-f", fmt, f"{contract}.vy"], cwd=CONTRACTS,
                                         capture_output=True, text=True, check=True).stdout)

    sm = vyper("source_map_runtime")
    lines = {int(pc): pos[0] for pc, pos in sm["pc_pos_map"].items()}
    sids = {int(pc): v[0] for pc, v in sm["pc_ast_map"].items()}
    files: dict[int, Path] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("ast_type") == "Module" and "source_id" in node:
                files[node["source_id"]] = Path(node["resolved_path"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(vyper("annotated_ast"))
    return lines, sids, files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("op", help="a gas.json key (e.g. settle_2of3), or 'batch': the 100-job batch")
    ap.add_argument("--contract", default="PactEscrow")
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    lines, sids, files = source_map(args.contract)

    hashes: dict[str, Any] = {}
    measure = bench.Bench.measure

    def recording(self: bench.Bench, key: str, receipt: dict[str, Any], ecrecovers: int = 0) -> int:
        hashes[key] = receipt["transactionHash"]
        return measure(self, key, receipt, ecrecovers)

    bench.Bench.measure = recording  # type: ignore[method-assign]
    with bench.Devnet(accounts=26, balance_eth=10**7, gas_limit=bench.BLOCK_GAS_LIMIT,
                  extra_args=["--steps-tracing"]) as net:
        b = bench.Bench(net)
        b.setup()
        b.run_ops()
        if args.op == "batch":
            sent = b.ch.tx
            last: dict[str, Any] = {}

            def tx(*a: Any, **k: Any) -> Any:
                last["r"] = sent(*a, **k)
                return last["r"]

            b.ch.tx = tx  # type: ignore[method-assign]
            b.batch_settle(100)
            hashes["batch"] = last["r"]["transactionHash"]
        if args.op not in hashes:
            raise SystemExit(f"no operation {args.op!r}; one of: batch, {', '.join(hashes)}")
        tr = b.ch.rpc("debug_traceTransaction", [hashes[args.op], {
            "disableStorage": True, "disableMemory": True, "disableStack": True}])
    by: Counter[tuple[int, int] | None] = Counter()
    at: tuple[int, int] | None = None
    for step in tr["structLogs"]:
        if step["depth"] != args.depth:
            continue
        pc = step["pc"]
        if pc in lines and pc in sids:
            at = (sids[pc], lines[pc])
        by[at] += 2_600 if step["op"] in CALLS else step["gasCost"]
    total = sum(by.values())
    print(f"{args.op}: gas used {tr['gas']:,}; {total:,} at depth {args.depth} ({args.contract})")
    for key, gas in by.most_common(args.top):
        if key is None:
            print(f"{gas:>10,}  (before the first mapped instruction)")
            continue
        f = files.get(key[0], Path(f"source {key[0]}"))
        text = f.read_text().splitlines()[key[1] - 1].strip() if f.is_file() else ""
        print(f"{gas:>10,}  {f.name}:{key[1]}  {text[:90]}")


if __name__ == "__main__":
    main()

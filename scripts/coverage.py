"""RELIABILITY C2: line coverage of the .vy sources under the contract tests.

Runs tests/contracts (the stateful fuzz scaled down) under pytest-cov with titanoboa's
coverage.py plugin (`boa.coverage`) and scripts/vy_coverage_plugin.py (which maps each traced
frame to the contract whose code actually ran), then prints a per-file table, the coverage of
the money paths (the functions listed in MONEY_PATHS) with any missed lines, and, last,
`vy line coverage: NN.N%`. Exits non-zero if a test fails, if overall coverage is below
--fail-under, or if a money path is below 100 %.

    python scripts/coverage.py [-n 2] [--examples 20] [--steps 20] [test paths]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# this file is named like the coverage package: run as a script, its own directory heads
# sys.path and `import coverage` would import this file
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import coverage  # noqa: E402
import vyper.ast as vy_ast  # noqa: E402
from vyper.ast.parse import parse_to_ast  # noqa: E402

CONTRACTS = ROOT / "contracts"
# the product; contracts/mocks/ are test doubles and not counted
SOURCES = [
    "PactEscrow.vy",
    "PactEscrowAppeals.vy",
    "PactEscrowBatch.vy",
    "PactRegistry.vy",
    "modules/escrow_core.vy",
    "modules/types.vy",
]
DEPLOYABLE = ["PactEscrow.vy", "PactEscrowAppeals.vy", "PactEscrowBatch.vy", "PactRegistry.vy"]

# The money paths of C2: every function that takes money in, moves it between ledgers, or pays
# it out. A function may serve more than one path (the escrow's fallback routes cancel, expire,
# challenge and resolve to the appeals facet, whose fallback routes settle_batch and evaluator
# unstaking to the batch facet; _credit books every payout; _evidence gates the settlements
# that take Feedback's evidence as an argument).
ESCROW, APPEALS, BATCH = "PactEscrow.vy", "PactEscrowAppeals.vy", "PactEscrowBatch.vy"
CORE = "modules/escrow_core.vy"
MONEY_PATHS: dict[str, list[tuple[str, str]]] = {
    "fund": [
        (ESCROW, "stake"), (ESCROW, "open"), (ESCROW, "open_with_permit"), (ESCROW, "_open"),
        (CORE, "_pull"),
    ],
    "settle": [
        (ESCROW, "settle"), (ESCROW, "finalize"), (ESCROW, "__default__"),
        (APPEALS, "resolve"), (APPEALS, "__default__"), (BATCH, "settle_batch"),
        (BATCH, "_flush"), (BATCH, "_settle_now"), (CORE, "_after_round0"),
        (CORE, "_settle_score"), (CORE, "_evidence"), (CORE, "_pay"), (CORE, "_record"),
        (CORE, "_set_bonus"), (CORE, "_credit"), (CORE, "_to_free"),
    ],
    "refund": [
        (ESCROW, "__default__"), (APPEALS, "cancel"), (APPEALS, "expire"),
        (CORE, "_end_reservations"), (CORE, "_credit"), (CORE, "_to_free"),
    ],
    "slash": [
        (CORE, "_close_bond"), (CORE, "_ceil_bps"), (CORE, "_bond"), (CORE, "_take_penalty"),
        (CORE, "_burn"), (APPEALS, "resolve"),
    ],
    "withdraw": [
        (ESCROW, "withdraw"), (ESCROW, "withdraw_stake"), (ESCROW, "__default__"),
        (APPEALS, "__default__"), (BATCH, "request_unstake"), (BATCH, "withdraw_evaluator_stake"),
        (CORE, "_push"),
    ],
}

RC = """\
[run]
plugins = boa.coverage
data_file = {data}
omit = */contracts/mocks/*
"""


@dataclass
class FileCov:
    statements: set[int]  # lines with code of their own (see code_lines)
    missing: set[int]
    no_code: set[int]  # lines boa.coverage lists that compile to no code: not counted

    @property
    def covered(self) -> int:
        return len(self.statements) - len(self.missing)


def run_tests(args: argparse.Namespace, rc: Path) -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PACTBOND_FUZZ_EXAMPLES"] = str(args.examples)
    env["PACTBOND_FUZZ_STEPS"] = str(args.steps)
    cmd = [
        sys.executable, "-m", "pytest", *(args.tests or ["tests/contracts"]), "-q",
        "-p", "no:cacheprovider", "-p", "scripts.vy_coverage_plugin", f"--cov={CONTRACTS}",
        f"--cov-config={rc}", "--cov-report=",
        *(["-n", str(args.workers)] if args.workers > 0 else []),
    ]
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode


def code_lines() -> dict[Path, set[int]]:
    """Per source file, the lines some bytecode of the deployable contracts maps to (runtime
    and init code), attributed as the plugin attributes them. A line boa.coverage lists but no
    code maps to (a bare `return`, which compiles to a jump into the function's exit code; a
    zero initialiser such as `ret: Bytes[32] = b""`; a folded constant) can never be seen to
    run, so it is listed apart and not counted either way."""
    import boa
    from scripts.vy_coverage_plugin import span
    from vyper.compiler.settings import anchor_settings
    from vyper.ir import compile_ir

    out: dict[Path, set[int]] = {}
    for name in DEPLOYABLE:
        cd = boa.load_partial(str(CONTRACTS / name)).compiler_data
        with anchor_settings(cd.settings):
            _, deploy_map = compile_ir.assembly_to_evm(cd.assembly)
        for ast_map in (cd.source_map["pc_raw_ast_map"], deploy_map["pc_raw_ast_map"]):
            for node in ast_map.values():
                s = span(node)
                lines = out.setdefault(Path(node.module_node.resolved_path).resolve(), set())
                lines.update(range(s.lineno, s.end_lineno + 1))
    return out


def analyse(rc: Path) -> dict[str, FileCov]:
    from boa.coverage import TitanoboaReporter

    cov = coverage.Coverage(config_file=str(rc))
    cov.load()
    measured = {Path(f).resolve() for f in cov.get_data().measured_files()}
    with_code = code_lines()
    out: dict[str, FileCov] = {}
    for rel in SOURCES:
        path = (CONTRACTS / rel).resolve()
        listed = set(TitanoboaReporter(str(path)).lines())
        missing = set(listed)
        if path in measured:
            _, statements, _, missed, _ = cov.analysis2(str(path))
            assert set(statements) == listed
            missing = set(missed)
        code = with_code.get(path, set())
        out[rel] = FileCov(listed & code, missing & code, listed - code)
    return out


def function_spans(rel: str) -> dict[str, tuple[int, int]]:
    tree = parse_to_ast((CONTRACTS / rel).read_text())
    fns = tree.get_children(vy_ast.FunctionDef)
    return {f.name: (f.lineno, f.end_lineno or f.lineno) for f in fns}


def pct(covered: int, total: int) -> float:
    return 100.0 * covered / total if total else 100.0


def ranges(lines: set[int]) -> str:
    out: list[str] = []
    for n in sorted(lines):
        if out and out[-1].split("-")[-1] == str(n - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def report(files: dict[str, FileCov], fail_under: float) -> tuple[float, list[str]]:
    problems: list[str] = []
    print(f"\n{'file':<34}{'lines':>7}{'miss':>6}{'cover':>8}   missing")
    for rel, fc in files.items():
        print(f"contracts/{rel:<24}{len(fc.statements):>7}{len(fc.missing):>6}"
              f"{pct(fc.covered, len(fc.statements)):>7.1f}%   {ranges(fc.missing)}")
    total = sum(len(f.statements) for f in files.values())
    covered = sum(f.covered for f in files.values())
    overall = pct(covered, total)
    print(f"{'total':<34}{total:>7}{total - covered:>6}{overall:>7.1f}%")
    for rel, fc in files.items():
        if fc.no_code:
            print(f"  not counted, no code of their own: contracts/{rel} {ranges(fc.no_code)}")

    spans = {rel: function_spans(rel) for rel in SOURCES}
    print(f"\n{'money path':<12}{'lines':>7}{'miss':>6}{'cover':>8}   functions")
    for path, fns in MONEY_PATHS.items():
        lines: set[tuple[str, int]] = set()
        missed: list[str] = []
        for rel, fn in fns:
            if fn not in spans[rel]:
                raise SystemExit(f"money path {path}: no function {fn} in {rel}")
            lo, hi = spans[rel][fn]
            fl = {n for n in files[rel].statements if lo <= n <= hi}
            lines |= {(rel, n) for n in fl}
            if fm := fl & files[rel].missing:
                missed.append(f"{rel}:{fn} lines {ranges(fm)}")
        miss = {(rel, n) for rel, n in lines if n in files[rel].missing}
        names = ", ".join(f"{Path(rel).stem}.{fn}" for rel, fn in fns)
        cover = pct(len(lines) - len(miss), len(lines))
        print(f"{path:<12}{len(lines):>7}{len(miss):>6}{cover:>7.1f}%   {names}")
        for m in missed:
            print(f"{'':<12}missed: {m}")
        if miss:
            problems.append(f"money path {path} below 100 %")
    if overall < fail_under:
        problems.append(f"overall .vy line coverage {overall:.1f}% below {fail_under}%")
    return overall, problems


def source_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(CONTRACTS.rglob("*.vy")):
        h.update(path.as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--workers", type=int, default=2, help="pytest-xdist workers (0: none)")
    ap.add_argument("--examples", type=int, default=20, help="stateful fuzz sequences")
    ap.add_argument("--steps", type=int, default=20, help="stateful fuzz steps per sequence")
    ap.add_argument("--fail-under", type=float, default=95.0, help="overall threshold, percent")
    ap.add_argument("tests", nargs="*", help="test paths (default: tests/contracts)")
    args = ap.parse_args()

    started = time.monotonic()
    sources = source_digest()
    with tempfile.TemporaryDirectory(prefix="pactbond-cov-") as tmp:
        rc = Path(tmp) / "coveragerc"
        rc.write_text(RC.format(data=Path(tmp) / ".coverage"))
        rc_tests = run_tests(args, rc)
        if source_digest() != sources:
            # line numbers of the run and of the sources read now would not match
            raise SystemExit("contracts/ changed during the run: coverage figures invalid, rerun")
        files = analyse(rc)
    overall, problems = report(files, args.fail_under)
    if rc_tests != 0:
        problems.insert(0, f"contract tests failed (pytest exit {rc_tests})")
    print(f"\ncoverage run took {time.monotonic() - started:.0f} s")
    for p in problems:
        print(f"FAIL: {p}")
    print(f"vy line coverage: {overall:.1f}%")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

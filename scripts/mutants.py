"""RELIABILITY C4: plant known bugs in the contracts, one at a time, and check the tests catch each.

Every mutant is an exact text substitution in one .vy file (the original must occur exactly
once), applied to a scratch copy of the repository (contracts/, src/, tests/, scripts/,
pyproject.toml) in a temporary directory; the real contracts/ are never written. A mutant must
compile, fit EIP-170 and change the compiled code of at least one deployable contract (else it
is equivalent and proves nothing); then its targeted tests run with `-x`. The contract tests
load contracts/ from source; where a selected test reads the shipped artifacts, they are
rebuilt in the scratch copy first. Before any mutant, the union of the selected tests must pass
on an unmutated scratch copy, so a failure can only be the mutant's doing. The stateful fuzz,
where a mutant selects it, runs with one fixed seed (FUZZ_ENV): the same sequences in the
baseline and under every mutant.

Prints caught / MISSED per mutant with the first failing test, and ends with
`mutants caught: C/P`. Exits non-zero unless every mutant is caught.

    python scripts/mutants.py [--jobs 2] [--only ID ...] [--list] [--no-baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY = ["contracts", "src", "tests", "scripts", "pyproject.toml"]
DEPLOYABLE = ["PactEscrow.vy", "PactEscrowAppeals.vy", "PactEscrowBatch.vy", "PactRegistry.vy"]
ESCROW = ["PactEscrow.vy", "PactEscrowAppeals.vy", "PactEscrowBatch.vy"]  # escrow_core's users
EIP170 = 24_576
U = "tests/contracts/unit"
FUZZ = "tests/contracts/stateful"
# the stateful fuzz as a mutant's test: a fixed seed (the same sequences on the clean code, in
# the baseline, and on every mutant), enough steps that each rule runs dozens of times, and
# no shrinking (a caught mutant needs no minimal example)
FUZZ_ENV = {"PACTBOND_FUZZ_EXAMPLES": "60", "PACTBOND_FUZZ_STEPS": "30",
            "PACTBOND_FUZZ_SEED": "20261127", "PACTBOND_FUZZ_SHRINK": "0"}


@dataclass(frozen=True)
class Mutant:
    id: str
    bug: str  # the RELIABILITY C4 item it plants
    file: str  # relative to contracts/
    original: str  # exact text, found exactly once
    replacement: str
    tests: tuple[str, ...]  # pytest paths: the targeted subset
    k: str = ""  # pytest -k expression narrowing it


SWEEP = '''# token plumbing


@external
def sweep(asset: address, to: address, amount: uint256):
    """
    @notice MUTANT: the registry owner takes any of the escrow's money.
    """
    owner: address = abi_decode(raw_call(core.REGISTRY, method_id("owner()"), max_outsize=32,
                                         is_static_call=True), address)
    assert msg.sender == owner, "admin: not owner"
    core._push(asset, to, amount)
'''

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "drop-credit-write", "drop a state write (credit not zeroed on withdraw)",
        "PactEscrow.vy",
        "    core.credits[msg.sender][asset] = 0\n", "",
        (f"{U}/escrow/test_stake.py",), k="test_withdraw__",
    ),
    Mutant(
        "drop-pending-write", "drop a state write (pending stake not cleared)",
        "PactEscrowBatch.vy",
        "    core.evaluator_pending_word[msg.sender][asset] = 0\n", "",
        (f"{U}/escrow/test_stake.py",), k="withdraw_evaluator_stake",
    ),
    Mutant(
        "finalize-deadline-gte", "`>` to `>=` on a deadline (challenge deadline)", "PactEscrow.vy",
        "assert block.timestamp > j.close_at + terms.challenge_window,",
        "assert block.timestamp >= j.close_at + terms.challenge_window,",
        (f"{U}/settlement/test_finalize.py",),
    ),
    Mutant(
        "accept-deadline-lt", "`<=` to `<` on a deadline (accept deadline)", "PactEscrow.vy",
        'assert block.timestamp <= j.deadline, "escrow: accept window closed"',
        'assert block.timestamp < j.deadline, "escrow: accept window closed"',
        (f"{U}/escrow/test_accept.py",), k="deadline",
    ),
    Mutant(
        "cooldown-gt", "`>=` to `>` on a deadline (evaluator unstake cooldown)",
        "PactEscrowBatch.vy",
        'assert block.timestamp >= pw >> 128, "stake: cooldown not over"',
        'assert block.timestamp > pw >> 128, "stake: cooldown not over"',
        (f"{U}/escrow/test_stake.py",), k="withdraw_evaluator_stake",
    ),
    Mutant(
        "drop-s-check", "drop the s-check (accept high-s signatures)", "modules/escrow_core.vy",
        "if (v == 27 or v == 28) and s <= SECP256K1_HALF_N:",
        "if (v == 27 or v == 28):",
        (f"{U}/votes/test_signature_corpus.py",), k="high_s",
    ),
    Mutant(
        "drop-zero-signer-check", "drop the zero-signer check", "modules/escrow_core.vy",
        "if signer != empty(address) and signer == member:",
        "if signer == member:",
        (f"{U}/votes/test_zero_signer.py",),
    ),
    Mutant(
        "domain-without-chain-id", "drop chain id from the domain", "modules/escrow_core.vy",
        "keccak256(abi_encode(EIP712_DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))",
        "keccak256(abi_encode(EIP712_DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, self))",
        (f"{U}/votes/test_parity.py",), k="fixed_vector",
    ),
    Mutant(
        "domain-without-contract", "drop the verifying contract from the domain",
        "modules/escrow_core.vy",
        "keccak256(abi_encode(EIP712_DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))",
        "keccak256(abi_encode(EIP712_DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id))",
        (f"{U}/votes/test_parity.py",), k="fixed_vector",
    ),
    Mutant(
        "duplicate-signer", "allow a duplicate signer (round 0)", "modules/escrow_core.vy",
        '    assert (active >> i) & 1 == 1, "vote: key revoked"\n'
        '    assert (lanes >> (16 * i)) % LANE == 0, "vote: duplicate vote"\n'
        "    log VoteCounted(job_id=job_id, member=member, round=0,",
        '    assert (active >> i) & 1 == 1, "vote: key revoked"\n'
        "    log VoteCounted(job_id=job_id, member=member, round=0,",
        (f"{U}/votes/test_settle.py",), k="duplicate",
    ),
    Mutant(
        "duplicate-signer-round1", "allow a duplicate signer (round 1)", "modules/escrow_core.vy",
        '"vote: member stake below bond"\n'
        '    assert (lanes >> (16 * i)) % LANE == 0, "vote: duplicate vote"\n',
        '"vote: member stake below bond"\n',
        (f"{U}/settlement/test_resolve.py",), k="duplicate",
    ),
    Mutant(
        "pay-msg-sender", "pay msg.sender (the keeper) instead of the buyer",
        "modules/escrow_core.vy",
        "    self._credit(j.buyer, p.asset, to_buyer, job_id)\n",
        "    self._credit(msg.sender, p.asset, to_buyer, job_id)\n",
        (f"{U}/settlement/test_finalize.py",), k="keeper",
    ),
    Mutant(
        "transfer-before-write", "move a transfer before the state write (withdraw)",
        "PactEscrow.vy",
        "    core.credits[msg.sender][asset] = 0\n"
        "    log core.Withdrawn(account=msg.sender, asset=asset, to=to, amount=amount)\n"
        "    core._push(asset, to, amount)\n",
        "    core._push(asset, to, amount)\n"
        "    core.credits[msg.sender][asset] = 0\n"
        "    log core.Withdrawn(account=msg.sender, asset=asset, to=to, amount=amount)\n",
        (f"{U}/escrow/test_effects_before_interactions.py",),
    ),
    Mutant(
        "stake-transfer-before-write", "move a transfer before the state write (withdraw_stake)",
        "PactEscrow.vy",
        "    core.agent_stake_word[msg.sender][asset] = w - amount\n"
        "    log core.StakeWithdrawn(account=msg.sender, asset=asset, amount=amount, "
        "evaluator=False)\n"
        "    core._push(asset, to, amount)\n",
        "    core._push(asset, to, amount)\n"
        "    core.agent_stake_word[msg.sender][asset] = w - amount\n"
        "    log core.StakeWithdrawn(account=msg.sender, asset=asset, amount=amount, "
        "evaluator=False)\n",
        (f"{U}/escrow/test_effects_before_interactions.py",),
    ),
    Mutant(
        "slash-floor", "round a slash the wrong way (floor instead of ceiling)",
        "modules/escrow_core.vy",
        "        slashed = self._ceil_bps(bond, p.slash_bps)\n",
        "        slashed = bond * p.slash_bps // BPS\n",
        (f"{U}/settlement/test_slash_rounding.py",),
    ),
    Mutant(
        "fee-dust-kept", "round the fee split the wrong way (remainder kept by the escrow)",
        "modules/escrow_core.vy",
        "    to_buyer += j.fee - fee_each * n0\n", "",
        (f"{U}/settlement/test_bands.py",), k="not_divisible",
    ),
    Mutant(
        "admin-sweep", "let an admin sweep", "PactEscrow.vy",
        "# token plumbing\n", SWEEP,
        (f"{U}/security/test_admin_limits.py",), k="abi",
    ),
    Mutant(
        "pause-blocks-cancel", "let pause block refunds (cancel)", "PactEscrowAppeals.vy",
        "    assert msg.sender == j.buyer or block.timestamp > j.deadline,",
        '    assert not staticcall core.IRegistry(core.REGISTRY).paused(), "escrow: paused"\n'
        "    assert msg.sender == j.buyer or block.timestamp > j.deadline,",
        (f"{U}/escrow/test_cancel.py",), k="paused",
    ),
    Mutant(
        "pause-blocks-expire", "let pause block refunds (expiry)", "PactEscrowAppeals.vy",
        '        assert block.timestamp > j.deadline, "escrow: work window open"\n',
        '        assert block.timestamp > j.deadline, "escrow: work window open"\n'
        '        assert not staticcall core.IRegistry(core.REGISTRY).paused(), "escrow: paused"\n',
        (f"{U}/escrow/test_expire.py",), k="paused",
    ),
    Mutant(
        "pause-blocks-withdraw", "let pause block refunds (withdraw)", "PactEscrow.vy",
        '    assert amount > 0, "escrow: nothing to withdraw"\n',
        '    assert amount > 0, "escrow: nothing to withdraw"\n'
        '    assert not staticcall core.IRegistry(core.REGISTRY).paused(), "escrow: paused"\n',
        (f"{U}/security/test_admin_limits.py",), k="pause",
    ),
    Mutant(
        "skip-committee-version", "skip the committee-version check", "PactRegistry.vy",
        "    assert cv == expected_version and av == expected_appeal_version, "
        '"escrow: committee changed"\n',
        "",
        (f"{U}/registry/test_open_roster.py",), k="unexpected_version or rotation",
    ),
    Mutant(
        # ADR 012: the job word covers the terms' hash; the bug checks the fields against the
        # pact's stored hash instead, so the terms passed are never checked
        "drop-terms-check", "drop the pact-terms hash check", "modules/escrow_core.vy",
        "    if w >> 64 != convert(keccak256(abi_encode(job_id, f, terms)), uint256) >> 64:\n",
        "    if w >> 64 != convert(keccak256(abi_encode(job_id, f, "
        "self.pact_hash[(f.head >> 176) % 2**32])), uint256) >> 64:\n",
        (f"{U}/escrow/test_accept.py",), k="altered",
    ),
    Mutant(
        "drop-revocation-check", "skip the key-revocation check (round 0)",
        "modules/escrow_core.vy",
        '"vote: member not reserved"\n    assert (active >> i) & 1 == 1, "vote: key revoked"\n',
        '"vote: member not reserved"\n',
        (f"{U}/votes/test_settle.py",), k="revoked",
    ),
    # ADR 011's one word per job: the checks that hold it to the job's fields and its lanes
    Mutant(
        "drop-stale-fields-check", "drop the job-fields check (stale fields taken as current)",
        "modules/escrow_core.vy",
        '        raise "escrow: stale job fields"\n',
        "",
        (FUZZ,),
    ),
    Mutant(
        "vote-lane-not-written", "count a vote without writing its lane (round 0)",
        "modules/escrow_core.vy",
        "    if j.reserved & ~voters & active != 0:\n        self._put_lanes(job_id, lanes)\n",
        "    if j.reserved & ~voters & active != 0:\n        pass\n",
        (FUZZ,),
    ),
    Mutant(
        "batch-root-unchecked", "take a batch signature without rebuilding its root",
        "PactEscrowBatch.vy",
        '        assert root == bs.votes_root, "vote: votes differ from the signed batch"\n',
        "",
        (f"{U}/votes/test_batch.py", FUZZ), k="votes_differ or money_invariants",
    ),
    Mutant(
        "vote-roster-ignores-revocation", "count a revoked key's vote (settle's vote roster)",
        "PactRegistry.vy",
        "    active: uint256 = ((meta >> ACCEPTED_AT) % 2**16) & ~((meta >> REVOKED_AT) % 2**16)\n"
        "    return (meta >> 64) % 256,",
        "    active: uint256 = (meta >> ACCEPTED_AT) % 2**16\n    return (meta >> 64) % 256,",
        (f"{U}/votes/test_settle.py", f"{U}/registry/test_vote_roster.py"), k="revoked or revoke",
    ),
    Mutant(
        "batch-settles-unbounded",
        "let one settle_batch settle any number of jobs (past the gas cap)",
        "PactEscrowBatch.vy",
        '    assert settled < MAX_BATCH_SETTLES, "vote: batch settles too many jobs"\n',
        "",
        (f"{U}/votes/test_batch.py",), k="settling",
    ),
    Mutant(
        "evidence-unsigned", "take Feedback evidence without its member's signature",
        "modules/escrow_core.vy",
        "    assert self._valid_signature(e.member, self._digest(leaf), e.signature), "
        '"escrow: evidence vote unsigned"\n',
        "",
        (FUZZ,),
    ),
)


# -- scratch copies ----------------------------------------------------------------------------

CACHE_ENV = "PACTBOND_MUTANTS_BOA_CACHE"


def pytest_configure(config: object) -> None:
    """As a pytest plugin (`-p scripts.mutants`, in every xdist worker too): compile into the
    run's own titanoboa cache, not ~/.cache/titanoboa. Its keys hold the source path, so the
    scratch copies would otherwise leave a multi-megabyte entry per contract and path there."""
    cache = os.environ.get(CACHE_ENV)
    if cache:
        import boa.interpret

        boa.interpret.set_cache_dir(cache)


def scratch_copy(dest: Path, source: Path = ROOT) -> None:
    """A fresh copy of the repository's sources at `dest` (the same path is reused, so the
    compile cache serves every contract a mutant leaves unchanged)."""
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".hypothesis", "*.pyc")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in COPY:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)


def apply(m: Mutant, root: Path) -> None:
    path = root / "contracts" / m.file
    text = path.read_text()
    n = text.count(m.original)
    if n != 1:
        raise SystemExit(f"mutant {m.id}: original text found {n} times in contracts/{m.file} "
                         f"(must be exactly once):\n{m.original}")
    path.write_text(text.replace(m.original, m.replacement))


def affected(file: str) -> list[str]:
    """The deployable contracts whose code includes contracts/<file>."""
    if file.startswith("modules/"):
        return list(ESCROW)
    assert file in DEPLOYABLE, file
    return [file]


_COMPILE = threading.Lock()  # vyper's compiler state is process-global


def compile_runtime(root: Path, names: Iterable[str]) -> dict[str, bytes]:
    """Runtime code of contracts in `root`, through titanoboa and the run's cache, so the tests
    that follow find them compiled. A compile error is an invalid mutant, not a caught one."""
    import boa

    out: dict[str, bytes] = {}
    with _COMPILE:
        for name in names:
            try:
                cd = boa.load_partial(str(root / "contracts" / name)).compiler_data
                code = cd.bytecode_runtime
            except Exception as e:  # any compiler error
                raise RuntimeError(f"{name} does not compile: {type(e).__name__}: {e}") from e
            if len(code) > EIP170:
                raise RuntimeError(f"{name}: {len(code)} bytes > EIP-170 limit {EIP170}")
            out[name] = bytes(code)
    return out


def uses_artifacts(root: Path, tests: Iterable[str]) -> bool:
    """Whether a selected test file (or a conftest above it) reads the shipped artifacts."""
    files: set[Path] = set()
    for t in tests:
        p = root / t.split("::")[0]
        files.update(p.rglob("*.py") if p.is_dir() else [p])
        for parent in p.parents:
            if parent == root:
                break
            files.add(parent / "conftest.py")
    return any(f.is_file() and "artifacts" in f.read_text() for f in files)


def build_artifacts(root: Path) -> None:
    res = subprocess.run([sys.executable, "scripts/build_artifacts.py"], cwd=root,
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"artifacts do not build: {res.stdout}{res.stderr}"[-1500:])


def run_pytest(root: Path, tests: Iterable[str], k: str, cache: Path,
               workers: int = 0) -> tuple[int, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(root / "src")])
    env[CACHE_ENV] = str(cache)
    for name, value in FUZZ_ENV.items():
        env.setdefault(name, value)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rf", "-p", "no:cacheprovider",
           "-p", "scripts.mutants", *(["-k", k] if k else []),
           *(["-n", str(workers)] if workers else []), *tests]
    res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    return res.returncode, res.stdout + res.stderr


# -- one mutant --------------------------------------------------------------------------------


@dataclass
class Result:
    mutant: Mutant
    status: str  # caught | MISSED | INVALID
    detail: str
    seconds: float


def first_failure(output: str) -> str:
    m = re.search(r"^(?:FAILED|ERROR) (.+?)(?: - (.*))?$", output, re.MULTILINE)
    if not m:
        return "(no failure line)"
    return f"{m.group(1).split('::')[-1]}" + (f": {m.group(2)[:90]}" if m.group(2) else "")


def run_mutant(m: Mutant, clean: dict[str, bytes], pristine: Path, slot: Path,
               cache: Path) -> Result:
    started = time.monotonic()

    def result(status: str, detail: str) -> Result:
        return Result(m, status, detail, time.monotonic() - started)

    scratch_copy(slot, pristine)
    apply(m, slot)
    names = affected(m.file)
    try:
        code = compile_runtime(slot, names)
        if all(code[n] == clean[n] for n in names):
            return result("INVALID", "equivalent: the compiled code did not change")
        if uses_artifacts(slot, m.tests):
            build_artifacts(slot)
    except RuntimeError as e:
        return result("INVALID", str(e))
    rc, out = run_pytest(slot, m.tests, m.k, cache)
    if rc == 0:
        return result("MISSED", "every selected test passed")
    if rc == 1:
        return result("caught", first_failure(out))
    return result("INVALID", f"pytest exit {rc}:\n{out[-1500:]}")


def baseline(mutants: list[Mutant], pristine: Path, root: Path, cache: Path, workers: int,
             run_tests: bool) -> dict[str, bytes]:
    """The unmutated code: compiled (what each mutant must differ from) and, unless skipped,
    every mutant's selection run on it with all must pass."""
    scratch_copy(root, pristine)
    clean = compile_runtime(root, DEPLOYABLE)
    if not run_tests:
        return clean
    if any(uses_artifacts(root, m.tests) for m in mutants):
        build_artifacts(root)
    # the union of the selected files, whole: a superset of every mutant's selection
    tests = sorted({t for m in mutants for t in m.tests})
    rc, out = run_pytest(root, tests, "", cache, workers)
    if rc != 0:
        print(out[-4000:])
        raise SystemExit(f"baseline: the selected tests fail on the unmutated code (exit {rc}); "
                         "a mutant's failure there would prove nothing")
    # pytest's summary line (warnings printed at exit may follow it)
    summary = next((line.strip("= ") for line in reversed(out.strip().splitlines())
                    if re.search(r"\d+ passed", line)), "passed")
    print(f"baseline (unmutated): {len(tests)} test files: {summary}", flush=True)
    return clean


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-j", "--jobs", type=int, default=2, help="mutants run at once")
    ap.add_argument("--only", nargs="*", default=None, help="mutant ids to run")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip running the selections on the unmutated code")
    args = ap.parse_args()

    mutants = [m for m in MUTANTS if args.only is None or m.id in args.only]
    if args.only and len(mutants) != len(set(args.only)):
        raise SystemExit(f"unknown mutant id in {args.only}")
    if len({m.id for m in MUTANTS}) != len(MUTANTS):
        raise SystemExit("duplicate mutant id")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pactbond-mutants-") as t:
        tmp = Path(t)
        # one snapshot of the sources for the whole run: edits made meanwhile do not mix in
        pristine = tmp / "pristine"
        scratch_copy(pristine)
        # every substitution must apply to the sources as they are now
        for m in mutants:
            n = (pristine / "contracts" / m.file).read_text().count(m.original)
            if n != 1:
                raise SystemExit(f"mutant {m.id}: original text found {n} times in "
                                 f"contracts/{m.file} (must be exactly once)")
        if args.list:
            for m in mutants:
                print(f"{m.id:<28} {m.bug}  [contracts/{m.file}]")
            return 0
        cache = tmp / "boa-cache"
        os.environ[CACHE_ENV] = str(cache)
        pytest_configure(None)  # this process compiles into the same cache
        clean = baseline(mutants, pristine, tmp / "baseline", cache, args.jobs,
                         not args.no_baseline)
        slots: queue.Queue[Path] = queue.Queue()
        for i in range(max(1, args.jobs)):
            slots.put(tmp / f"slot-{i}")

        def one(m: Mutant) -> Result:
            slot = slots.get()
            try:
                return run_mutant(m, clean, pristine, slot, cache)
            finally:
                slots.put(slot)

        results: list[Result] = []
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for r in pool.map(one, mutants):
                results.append(r)
                print(f"{r.status:<8} {r.mutant.id:<28} {r.seconds:>5.0f} s  {r.mutant.bug}"
                      f"\n{'':<9}[contracts/{r.mutant.file}] {r.detail}", flush=True)
    caught = sum(r.status == "caught" for r in results)
    counts = {s: sum(r.status == s for r in results) for s in ("caught", "MISSED", "INVALID")}
    print(f"\nmutants run in {time.monotonic() - started:.0f} s; {json.dumps(counts)}")
    print(f"mutants caught: {caught}/{len(results)}")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())

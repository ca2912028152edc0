"""`pactbond demo`: a whole rollout on a local chain, in about a minute.

A local anvil; the contracts deployed; a 2-of-3 evaluator committee and a 2-of-3 appeal
committee of other members, each member a real `pactbond oracle run` process; a third committee
whose oracles are down. A pact owner writes a rollout: a shadow pact and bounded pacts, each
naming its evaluation spec (a hidden reference question set, a code test suite). Then real jobs:
a pass, a graded partial, a slashing fail, a no-delivery expiry, an evaluator-silence default,
and a too-generous verdict (two members run a buggy evaluator) that the buyer challenges and the
appeal committee overturns. Windows are crossed by moving the chain's clock. It prints one line
per on-chain event, then the rollout report, and stops everything it started.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from web3 import Web3

from pactbond.client import Job, JobState, Pactbond
from pactbond.deploy import Manifest, deploy
from pactbond.devnet import Devnet, dev_account, free_port
from pactbond.models import BPS, PactTerms
from pactbond.oracle.evaluators.base import Context, Outcome
from pactbond.oracle.evaluators.command import CommandEvaluator
from pactbond.oracle.spec import content_hash
from pactbond.wallets import KeyWallet

E18 = 10**18
HOUR = 3600
BLOCK_TIME = 0.25
# dev accounts by role
OWNER, ADMIN, BUYER, AGENT = 0, 1, 2, 3
COMMITTEE, APPEAL, SILENT = [4, 5, 6], [7, 8, 9], [10, 11, 12]
BUGGY = [5, 6]  # these two members run a buggy version of the code evaluator


class BuggyCommandEvaluator(CommandEvaluator):
    """The demo's buggy evaluator build: it runs the suite but ignores FAIL lines, so code
    that fails its tests passes. It claims the real name and version, as a bug would."""

    def evaluate(self, ctx: Context) -> Outcome:
        o = super().evaluate(ctx)
        if o.error:
            return o
        checks = [c.model_copy(update={"passed": True}) for c in o.checks]
        return o.model_copy(update={"score_bps": BPS if checks else 0, "checks": checks})


# -- what the demo judges ------------------------------------------------------------------------
QUESTIONS = [
    ("q1", "What is the capital of France?", "Paris"),
    ("q2", "How many sides does a hexagon have?", "6"),
    ("q3", "What is 12 x 12?", "144"),
    ("q4", "Which planet is known as the red planet?", "Mars"),
    ("q5", "What is the chemical symbol for gold?", "Au"),
    ("q6", "How many minutes are in an hour?", "60"),
    ("q7", "What is the largest ocean on Earth?", "Pacific"),
    ("q8", "What is the square root of 81?", "9"),
    ("q9", "Who wrote 'Hamlet'?", "Shakespeare"),
    ("q10", "What is the boiling point of water at sea level in Celsius?", "100"),
]
SUITE_RUNNER = '''import sys
token = sys.stdin.readline().strip()
try:
    from solution import add, mul
except Exception as e:
    for t in ("add_small", "add_negative", "mul_small", "mul_zero"):
        print(token, "FAIL", t, "import error:", type(e).__name__)
    sys.exit(0)
cases = {"add_small": lambda: add(2, 3) == 5, "add_negative": lambda: add(-2, -3) == -5,
         "mul_small": lambda: mul(4, 5) == 20, "mul_zero": lambda: mul(7, 0) == 0}
for name, check in cases.items():
    try:
        ok = check()
    except Exception:
        ok = False
    print(token, "PASS" if ok else "FAIL", name)
'''
GOOD_CODE = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"
BAD_CODE = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a + b\n"


def answers(correct: int) -> bytes:
    """A deliverable answering the first `correct` questions right and the rest wrong."""
    return json.dumps({"answers": {q: (a if i < correct else "I don't know")
                                   for i, (q, _, a) in enumerate(QUESTIONS)}}).encode()


# -- printing ------------------------------------------------------------------------------------
class Narrator:
    """One line per step or event; a spinner while waiting when the output is a terminal."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.tty = sys.stdout.isatty()
        self.names: dict[str, str] = {}

    def who(self, addr: str) -> str:
        return self.names.get(addr, addr[:10])

    def say(self, text: str, indent: int = 0) -> None:
        with self.lock:
            t = time.monotonic() - self.t0
            prefix = "\r\x1b[K" if self.tty else ""
            print(f"{prefix}[{t:5.1f}s] {'  ' * indent}{text}", flush=True)

    def title(self, text: str) -> None:
        with self.lock:
            print(f"\n== {text}", flush=True)

    def wait(self, what: str, pred: Callable[[], Any], timeout: float = 90.0) -> Any:
        frames = "|/-\\"
        start = time.monotonic()
        i = 0
        while True:
            got = pred()
            if got:
                if self.tty:
                    with self.lock:
                        print("\r\x1b[K", end="", flush=True)
                return got
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"demo: timed out waiting for {what}")
            if self.tty:
                with self.lock:
                    print(f"\r  {frames[i % 4]} waiting for {what}…", end="", flush=True)
            i += 1
            time.sleep(0.2)


def eth(wei: int) -> str:
    s = f"{wei / E18:.4f}".rstrip("0").rstrip(".")  # display only; money stays int wei
    return f"{s} ETH"


def describe(ev: Any, n: Narrator) -> str | None:
    """A readable line for an escrow event (None for the ones the demo does not show)."""
    name = ev.name
    w = n.who
    if name == "JobOpened":
        return (f"job {ev.job_id} opened on pact {ev.pact_id}: {w(ev.buyer)} escrows "
                f"{eth(ev.value)} + fee {eth(ev.fee)} for {w(ev.agent)}")
    if name == "JobAccepted":
        return f"job {ev.job_id} accepted by {w(ev.agent)}, bond {eth(ev.bond)} locked"
    if name == "JobSubmitted":
        return f"job {ev.job_id} submitted: deliverable 0x{ev.deliverable_hash.hex()[:12]}…"
    if name == "VoteCounted":
        r = "appeal vote" if ev.round else "vote"
        return (f"job {ev.job_id} {r} by {w(ev.member)}: {ev.score_bps / 100:.2f} % "
                f"(evidence 0x{ev.evidence_hash.hex()[:10]}…)")
    if name == "VerdictReached":
        return f"job {ev.job_id} verdict reached with {ev.votes} votes"
    if name == "RoundClosed":
        return f"job {ev.job_id} round 0 closed at median {ev.score_bps / 100:.2f} %"
    if name == "JobChallenged":
        return (f"job {ev.job_id} CHALLENGED by {w(ev.challenger)} against "
                f"{ev.score_bps / 100:.2f} %")
    if name == "AppealResolved":
        what = "OVERTURNED" if ev.overturned else "upheld"
        return (f"job {ev.job_id} appeal resolved: verdict {what} at {ev.score_bps / 100:.2f} %"
                f", challenger {'wins' if ev.challenger_won else 'loses'}")
    if name == "EvaluatorPenalized":
        to = "burned" if int(ev.to, 16) == 0 else f"paid to {w(ev.to)}"
        return f"job {ev.job_id} evaluator {w(ev.member)} penalized {eth(ev.amount)} ({to})"
    if name == "JobSettled":
        return (f"job {ev.job_id} SETTLED at {ev.score_bps / 100:.2f} %: agent gets "
                f"{eth(ev.to_agent)}, buyer {eth(ev.to_buyer)}, slashed {eth(ev.slashed)}")
    if name == "JobExpired":
        kind = "no delivery" if ev.no_delivery else "evaluator silence"
        return (f"job {ev.job_id} EXPIRED ({kind}): agent gets {eth(ev.to_agent)}, "
                f"slashed {eth(ev.slashed)}")
    if name == "JobCancelled":
        return f"job {ev.job_id} cancelled by {w(ev.by)}"
    return None  # Burned/Credited restate what the lines above already say


class Tailer(threading.Thread):
    """Prints escrow events as they are mined."""

    def __init__(self, pb: Pactbond, n: Narrator) -> None:
        super().__init__(daemon=True)
        self.pb, self.n = pb, n
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.next_block = pb.w3.eth.block_number + 1

    def poll(self) -> None:
        with self.lock:
            head = self.pb.w3.eth.block_number
            if head < self.next_block:
                return
            for ev in self.pb.events(self.next_block, head):
                line = describe(ev, self.n)
                if line:
                    self.n.say(line, indent=1)
            self.next_block = head + 1

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(Exception):
                self.poll()
            self.stop.wait(0.2)


# -- oracle processes ----------------------------------------------------------------------------
@dataclass
class Oracle:
    index: int
    proc: Any
    api: str = ""


def start_oracles(workdir: Path, rpc: str, manifest: Path, docs: Path,
                  groups: list[tuple[list[int], list[int]]], out: list[Oracle],
                  timeout: float = 60.0) -> list[Oracle]:
    """One process per member; members of a group know each other's vote endpoints. Each
    process goes into the caller's `out` as soon as it exists, so the caller's clean-up stops
    it even when a later one fails to start (or Ctrl-C comes) before this returns."""
    import os
    import select
    import subprocess

    # every oracle knows every endpoint: peers' votes come from its own committee, and an
    # appeal member fetches the deliverable from the members who judged round 0
    ports = {i: free_port() for members, _ in groups for i in members}
    peers = {dev_account(i).address: f"http://127.0.0.1:{p}" for i, p in ports.items()}
    for members, committees in groups:
        for i in members:
            cfg: dict[str, Any] = {
                "rpc_url": rpc, "manifest": str(manifest), "committees": committees,
                "key_env": "PACTBOND_DEMO_ORACLE_KEY", "db": str(workdir / f"oracle{i}.db"),
                "http": {"host": "127.0.0.1", "port": ports[i]}, "peers": peers,
                "documents": [str(docs)], "confirmations": 1, "poll_interval": 0.25,
                "margin": 60,  # the sandbox's scratch directories go to the system's temp dir
            }
            if i in BUGGY:
                cfg["evaluator_overrides"] = {
                    "command": "pactbond.cli.demo:BuggyCommandEvaluator"}
            path = workdir / f"oracle{i}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            env = {k: v for k, v in os.environ.items() if not k.startswith("PACTBOND_")}
            # an anvil test key: public, devnet only
            env["PACTBOND_DEMO_ORACLE_KEY"] = "0x" + bytes(dev_account(i).key).hex()
            # the demo's own throwaway chain and files: as a normal user the code evaluator may
            # run agent code unsandboxed here (never on an oracle with a real key)
            env["PACTBOND_COMMAND_UNSANDBOXED"] = "1"
            log = (workdir / f"oracle{i}.log").open("ab")
            proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                [sys.executable, "-m", "pactbond", "oracle", "run", "--config", str(path)],
                stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True)
            log.close()
            out.append(Oracle(i, proc))
    deadline = time.monotonic() + timeout
    for o in out:
        # its first line says where its API listens; a process that hangs before it must not
        # hang the demo
        ready, _, _ = select.select([o.proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        line = o.proc.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"oracle {o.index} did not start: see "
                               f"{workdir / f'oracle{o.index}.log'}")
        o.api = json.loads(line)["api"]
    return out


def stop_oracles(oracles: list[Oracle]) -> None:
    import subprocess

    for o in oracles:
        if o.proc.poll() is None:
            o.proc.terminate()
    for o in oracles:
        try:
            o.proc.wait(12)
        except subprocess.TimeoutExpired:
            o.proc.kill()
            o.proc.wait(5)
        if o.proc.stdout:
            o.proc.stdout.close()


# -- the scenario --------------------------------------------------------------------------------
@dataclass
class Demo:
    n: Narrator
    devnet: Devnet
    manifest: Manifest
    workdir: Path
    docs: Path
    c: dict[int, Pactbond] = field(default_factory=dict)
    terms: dict[int, PactTerms] = field(default_factory=dict)
    apis: dict[int, str] = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)
    tailer: Tailer | None = None

    def client(self, i: int) -> Pactbond:
        if i not in self.c:
            self.c[i] = Pactbond.connect(self.devnet.url, self.manifest,
                                         KeyWallet(dev_account(i)))
        return self.c[i]

    def doc(self, obj: Any) -> bytes:
        data = json.dumps(obj, indent=1).encode()
        h = content_hash(data)
        (self.docs / f"0x{h.hex()}.json").write_bytes(data)
        return h

    def warp(self, seconds: int) -> None:
        self.devnet.rpc("evm_increaseTime", [seconds])
        self.devnet.rpc("evm_mine")

    def job(self, jid: int) -> Job:
        return self.client(BUYER).job(jid)

    def run_job(self, pid: int, deliverable: bytes | None, value: int, label: str) -> int:
        buyer, agent = self.client(BUYER), self.client(AGENT)
        self.n.say(f"{label}")
        jid = buyer.open_job(pid, agent.address, value)
        agent.accept(jid)
        if deliverable is not None:
            import requests

            h = content_hash(deliverable)
            t = self.terms[pid]
            members = COMMITTEE if t.committee_id == self.committee else SILENT
            for i in members:  # the agent uploads to each member it can reach
                if i in self.apis:
                    requests.post(f"{self.apis[i]}/deliverables", data=deliverable, timeout=10)
            agent.submit(jid, h)
        return jid

    committee: int = 0

    def wait_state(self, jid: int, states: set[JobState], what: str) -> Job:
        j: Job = self.n.wait(what, lambda: (x := self.job(jid)).state in states and x)
        if self.tailer is not None:
            self.tailer.poll()  # print the events that got it there before going on
        return j


def _cap(d: Demo, pid: int) -> int:
    return d.client(BUYER).exposure(dev_account(AGENT).address, pid).cap


def scenario(d: Demo) -> dict[str, Any]:
    n = d.n
    owner, admin, agent = (d.client(i) for i in (OWNER, ADMIN, AGENT))
    for i, role in [(OWNER, "pact owner"), (ADMIN, "committee admin"), (BUYER, "buyer"),
                    (AGENT, "agent")]:
        n.names[dev_account(i).address] = role
    for i in COMMITTEE + APPEAL + SILENT:
        n.names[dev_account(i).address] = f"oracle-{i}"

    n.title("Committees: evaluators consent and stake")
    bond, penalty = 2 * E18, E18
    cid = admin.create_committee([dev_account(i).address for i in COMMITTEE], 2, bond, penalty)
    aid = admin.create_committee([dev_account(i).address for i in APPEAL], 2, bond, penalty)
    sid = admin.create_committee([dev_account(i).address for i in SILENT], 2, bond, penalty)
    d.committee = cid
    for members, comm in [(COMMITTEE, cid), (APPEAL, aid), (SILENT, sid)]:
        for i in members:
            e = d.client(i)
            e.accept_version(e.current_version(comm))
            e.stake(10 * E18, evaluator=True)  # the bond, and room for 8 open jobs' penalties
    n.say(f"committee {cid}: oracles 4, 5, 6 (2-of-3); appeal committee {aid}: oracles 7, 8, 9 "
          f"(2-of-3); committee {sid}: oracles 10, 11, 12 (2-of-3, their services are down)")
    n.say("each member accepted its version and staked 10 ETH (bond 2 ETH, penalty 1 ETH a job)")

    n.title("The rollout: one workflow, one owner, specs fixed before any work")
    qa_ref = d.doc({"items": [{"id": q, "question": text, "answer": a}
                              for q, text, a in QUESTIONS]})
    suite = d.doc({"files": {"run_tests.py": SUITE_RUNNER}, "argv": ["python3", "run_tests.py"],
                   "tests": ["add_small", "add_negative", "mul_small", "mul_zero"]})

    def qa_spec(name: str, hidden: bool) -> bytes:
        return d.doc({"pactbond_spec": 1, "name": name,
                      "evaluator": {"name": "reference", "version": "1"},
                      "thresholds": {"fail_below_bps": 5000, "pass_at_bps": 9000},
                      "params": {"reference": "0x" + qa_ref.hex(), "hidden": hidden}})

    code_spec = d.doc({"pactbond_spec": 1, "name": "code-tests-v1",
                       "evaluator": {"name": "command", "version": "1"},
                       "thresholds": {"fail_below_bps": 5000, "pass_at_bps": 10000},
                       "params": {"suite": "0x" + suite.hex(), "timeout_s": 10}})
    base: dict[str, Any] = dict(
        committee_id=cid, appeal_committee_id=aid, fail_below_bps=5000, pass_at_bps=9000,
        evaluator_fee=E18 // 100, challenge_bond=E18 // 10, appeal_fee=E18 // 50,
        min_appeal_delta_bps=2000, accept_window=HOUR, work_window=HOUR, eval_window=HOUR,
        challenge_window=0, appeal_window=0, cap_initial=2 * E18, cap_step=E18,
        cap_max=5 * E18)
    bounded = dict(bond_bps=5000, bond_cap=E18, slash_bps=10_000, slash_buyer_bps=8000,
                   slash_burn_bps=2000)
    pacts = {
        "shadow": PactTerms(**{**base, "spec_hash": qa_spec("qa-shadow", False),
                               "shadow": True}),
        "bounded": PactTerms(**{**base, **bounded, "spec_hash": qa_spec("qa-hidden", True)}),
        "code": PactTerms(**{**base, **bounded, "spec_hash": code_spec,
                             "fail_below_bps": 5000, "pass_at_bps": 10_000,
                             "challenge_window": HOUR, "appeal_window": HOUR}),
        "silent": PactTerms(**{**base, "committee_id": sid, "spec_hash": qa_spec("qa-silent",
                                                                                 False)}),
    }
    pid: dict[str, int] = {}
    for name, t in pacts.items():
        pid[name] = owner.create_pact(t)
        d.terms[pid[name]] = t
        admin.approve_pact(t.committee_id, pid[name])
        admin.approve_pact(t.appeal_committee_id, pid[name])
    n.say(f"pact {pid['shadow']} SHADOW  (no money at risk) : 10 reference questions, "
          "pass >= 90 %, fail < 50 %")
    n.say(f"pact {pid['bounded']} BOUNDED (bond 50 %, slash 100 %): the same questions, "
          "hidden from the agent until each verdict")
    n.say(f"pact {pid['code']} BOUNDED code pact: a 4-test suite over submitted Python, "
          "1 h challenge window")
    n.say(f"pact {pid['silent']} on committee {sid} (oracles down): silence refunds the buyer")
    agent.stake(5 * E18)
    n.say("the agent staked 5 ETH; its exposure cap starts at 2 ETH per pact (+1 ETH a pass, "
          "max 5 ETH)")
    return {"cid": cid, "aid": aid, "sid": sid, "pid": pid}


def jobs(d: Demo, setup: dict[str, Any]) -> dict[str, Any]:
    n, pid = d.n, setup["pid"]
    res: dict[str, Any] = {"caps": []}

    n.title("Stage 1, shadow: the agent answers the questions")
    j1 = d.run_job(pid["shadow"], answers(10), E18 // 2, "job: shadow, 10/10 correct")
    d.wait_state(j1, {JobState.SETTLED}, f"job {j1} to settle")

    n.title("Stage 2, bounded: real bond, real slash")
    b = pid["bounded"]
    res["caps"].append(("start", _cap(d, b)))
    j2 = d.run_job(b, answers(10), E18, "job: bounded, 10/10 correct (pass)")
    d.wait_state(j2, {JobState.SETTLED}, f"job {j2} to settle")
    res["caps"].append(("after the pass", _cap(d, b)))
    n.say(f"exposure cap under pact {b}: {eth(res['caps'][0][1])} -> {eth(res['caps'][1][1])}")
    j3 = d.run_job(b, answers(7), E18, "job: bounded, 7/10 correct (partial)")
    d.wait_state(j3, {JobState.SETTLED}, f"job {j3} to settle")
    res["caps"].append(("after the partial", _cap(d, b)))
    j4 = d.run_job(b, answers(2), E18, "job: bounded, 2/10 correct (fail: the bond is slashed)")
    d.wait_state(j4, {JobState.SETTLED}, f"job {j4} to settle")
    res["caps"].append(("after the fail", _cap(d, b)))
    n.say(f"exposure cap: {eth(res['caps'][2][1])} after the partial, {eth(res['caps'][3][1])} "
          "after the fail (reset)")
    j5 = d.run_job(b, None, E18 // 2, "job: bounded, accepted but never delivered")

    n.title("Silence and a generous verdict")
    j6 = d.run_job(pid["silent"], answers(10), E18 // 2,
                   "job: on the committee whose oracles are down")
    j7 = d.run_job(pid["code"], json.dumps({"files": {"solution.py": BAD_CODE}}).encode(), E18,
                   "job: code that fails every test, judged by two buggy evaluators")
    j = d.wait_state(j7, {JobState.VERDICT}, f"job {j7}'s verdict")
    d.n.wait(f"job {j7}'s round 0 to close", lambda: (x := d.job(j7)).round0_close < x.deadline
             or len(x.round0) == 3)
    j = d.job(j7)
    n.say(f"round 0 scores {sorted(j.round0.values())}: the median passes code that fails")
    n.say("the buyer reads the evidence, reruns the suite, and challenges")
    buyer = d.client(BUYER)
    # blocks come every 0.25 s but timestamps are whole seconds: wait for the chain's clock
    d.n.wait("the challenge window to open", lambda: buyer.now() > d.job(j7).round0_close)
    buyer.challenge(j7)
    d.n.wait(f"the appeal committee's votes on job {j7}",
             lambda: len(d.job(j7).round1) >= 3, timeout=90)

    n.title("Moving the chain's clock past every window (2 hours)")
    d.warp(2 * HOUR + 60)
    for jid in (j5, j6, j7):
        d.wait_state(jid, {JobState.SETTLED, JobState.EXPIRED_NO_DELIVERY,
                           JobState.EXPIRED_NO_VERDICT}, f"the keepers to close job {jid}")
    res["jobs"] = {"shadow_pass": j1, "pass": j2, "partial": j3, "fail": j4,
                   "no_delivery": j5, "silence": j6, "overturned": j7}
    return res


def report(d: Demo, setup: dict[str, Any], res: dict[str, Any]) -> None:
    from pactbond import report as rep

    n = d.n
    n.title("Outcome")
    for label, jid in res["jobs"].items():
        j = d.job(jid)
        n.say(f"job {jid:<2} {label:<12} {j.state.name}")
    for i in BUGGY:
        s = d.client(BUYER).evaluator_stake(dev_account(i).address)
        n.say(f"oracle-{i} (buggy evaluator) stake now {eth(s.stake)} of 10 ETH")
    rollout = {
        "name": "support-answers", "owner": "pact owner", "workflow": "answer questions",
        "proof_model": "committee of 3 evaluators, EIP-712 votes",
        "stages": [{"name": "qa-shadow", "pact_id": setup["pid"]["shadow"], "kind": "shadow"},
                   {"name": "qa-bounded", "pact_id": setup["pid"]["bounded"], "kind": "bounded"},
                   {"name": "code-bounded", "pact_id": setup["pid"]["code"], "kind": "bounded"}],
        "expansion": {"min_settled": 3, "min_pass_rate_bps": 9000, "max_overturned": 0,
                      "within_days": 30},
    }
    path = d.workdir / "rollout.yaml"
    path.write_text(yaml.safe_dump(rollout, sort_keys=False))
    r = rep.build_report(d.client(BUYER), rep.load_rollout(path))
    n.title("Rollout report")
    print(rep.render_table(r), flush=True)
    png = rep.plot(r, d.workdir / "rollout.png")
    kept = Path(".pactbond") / "demo-rollout.png"  # the work dir goes; the plot stays
    kept.parent.mkdir(exist_ok=True)
    shutil.copyfile(png, kept)
    n.say(f"plot of each stage's outcomes over time: {kept}")


@contextlib.contextmanager
def _workdir(keep: bool, workdir: str | None) -> Iterator[Path]:
    if workdir:
        p = Path(workdir)
        p.mkdir(parents=True, exist_ok=True)
        yield p
        return
    p = Path(tempfile.mkdtemp(prefix="pactbond-demo-"))
    try:
        yield p
    finally:
        if not keep:
            shutil.rmtree(p, ignore_errors=True)


def run_demo(keep: bool = False, workdir: str | None = None,
             inspect: Callable[[Demo, dict[str, Any]], None] | None = None) -> int:
    """Run the demo; `inspect(demo, results)` (tests) runs before anything is stopped."""
    n = Narrator()
    oracles: list[Oracle] = []
    print("pactbond demo: staked agents, escrowed jobs, committee verdicts, on a local chain\n",
          flush=True)
    with _workdir(keep, workdir) as wd, Devnet(accounts=20, block_time=BLOCK_TIME) as net:
        tailer: Tailer | None = None
        try:
            w3 = Web3(Web3.HTTPProvider(net.url))
            manifest = deploy(w3, net.account(0), network="demo", out_dir=None,
                              expected_chain_id=net.chain_id)
            mpath = manifest.save(wd / "deployments" / "demo.json")
            n.say(f"local chain {net.url} (chain {net.chain_id}); contracts deployed")
            docs = wd / "documents"
            docs.mkdir(exist_ok=True)
            d = Demo(n, net, manifest, wd, docs)
            setup = scenario(d)
            n.title("Oracle services: six processes, one per committee member")
            start_oracles(wd, net.url, mpath, docs, [
                (COMMITTEE, [setup["cid"]]), (APPEAL, [setup["aid"]])], oracles)
            d.apis = {o.index: o.api for o in oracles}
            d.pids = [o.proc.pid for o in oracles]
            n.say("oracles 4, 5, 6 serve committee "
                  f"{setup['cid']} (5 and 6 run a buggy code-evaluator build); "
                  f"oracles 7, 8, 9 serve appeals; each on its own HTTP port and SQLite file")
            tailer = d.tailer = Tailer(d.client(BUYER), n)
            tailer.start()
            res = jobs(d, setup)
            time.sleep(0.5)
            tailer.stop.set()
            tailer.join(2)
            tailer.poll()
            report(d, setup, res)
            if inspect is not None:
                inspect(d, {**setup, **res})
        finally:
            if tailer is not None:
                tailer.stop.set()
            stop_oracles(oracles)
        n.say(f"done: stopped {len(oracles)} oracles and the chain"
              + (f"; files kept in {wd}" if keep or workdir else ""))
    return 0

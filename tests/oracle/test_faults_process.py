"""Process-level faults of the oracle service (RELIABILITY.md, "Oracle service"): F1-F4 SIGKILL
at six points, F5 one job delivered 100 times, F6 a conflicting vote, F7 votes posted by someone
else first, F14 SIGTERM under load, F15 a locked / read-only / full database, F16 start-up
guards, F19 a clock off by +-10 minutes, F20 another process's node on the configured port (at
start-up, and swapped under a running oracle); and every log line JSON, without the key or the
keystore password. Measured figures are printed at the end of the module (run with -s).

Real `pactbond oracle run` processes over a private anvil mining every 0.2 s. The committee is
world.cid (2-of-3, dev accounts 4-6); the oracle under test is usually account 4 running alone,
so that it is the one that posts, while the test process plays the other members (their votes
signed by the client library) where a settlement is needed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_hash.auto import keccak

from pactbond import JobState, KeyWallet, Pactbond
from pactbond.client import REVERTS, revert_reason
from pactbond.deploy import Manifest
from pactbond.devnet import Devnet, dev_account
from pactbond.oracle.config import OracleSettings
from pactbond.oracle.main import plugin_loader
from pactbond.oracle.service import KILL_POINTS, Oracle
from pactbond.oracle.spec import Library
from pactbond.oracle.store import MIGRATIONS, ConflictingVoteError, Store, StoreError
from pactbond.wallets import write_keystore
from tests.client.conftest import E18, World, make_world
from tests.oracle.conftest import Cluster, deliver, schema_spec, upload, wait_for
from tests.oracle.harness import OracleProc, track_fields

A, B, C = 4, 5, 6  # world.cid's members (dev accounts); A is the oracle under test
VALUE = E18 // 10  # small jobs: many fit under the agent's exposure cap
FIGURES: dict[str, float] = {}  # measured figures, printed (run with -s to see them)


@pytest.fixture(scope="module")
def world(net: Devnet, manifest_path: Path) -> World:
    # more evaluator stake than the shared fixture: every open job reserves a penalty from
    # each member, and this module leaves jobs open on purpose
    return make_world(net, Manifest.load(manifest_path), stake=1_000 * E18)


@pytest.fixture
def pid(world: World, docs: Path) -> int:
    """A fresh pact (json-schema spec, zero challenge window) for the test."""
    return world.pact(spec_hash=schema_spec(docs), challenge_window=0)


# -- helpers ----------------------------------------------------------------------------------


def key_hex(i: int) -> str:
    return bytes(dev_account(i).key).hex()


def trio(world: World, cluster: Cluster, **over: Any) -> list[OracleProc]:
    """Oracles for accounts 4-6 (each the others' peer), configured but not started; they
    watch from the current block, so jobs of earlier tests are not theirs."""
    start = int(world.keeper.w3.eth.block_number)
    return cluster.oracles([A, B, C], [world.cid], start=False, start_block=start, **over)


def db_path(p: OracleProc) -> Path:
    return Path(p.config["db"])


def rows(p: OracleProc, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
    """Read the oracle's SQLite file directly (also while it runs: WAL readers do not block)."""
    with closing(sqlite3.connect(db_path(p), timeout=10)) as db:
        return db.execute(sql, args).fetchall()


def vote_row(p: OracleProc, jid: int) -> tuple[int, bytes, bytes] | None:
    got = rows(p, "SELECT score, evidence_hash, signature FROM votes WHERE job_id = ? AND "
                  "round = 0", (jid,))
    return (int(got[0][0]), bytes(got[0][1]), bytes(got[0][2])) if got else None


def intent_status(p: OracleProc, jid: int, kind: str = "vote") -> str | None:
    got = rows(p, "SELECT status FROM intents WHERE kind = ? AND job_id = ?", (kind, jid))
    return str(got[0][0]) if got else None


def counted(world: World, jid: int, member: str, since: int) -> list[Any]:
    return [e for e in world.keeper.events(since, names="VoteCounted", job_id=jid)
            if e.member == member]


def settlements(world: World, jid: int, since: int) -> list[Any]:
    return list(world.keeper.events(since, names="JobSettled", job_id=jid))


def post_others(world: World, jid: int, members: tuple[int, ...] = (1, 2)) -> None:
    """The test process posts the votes of the other committee members (world.evals[i])."""
    votes = [m.sign_vote(m.vote_for(jid, 10_000, keccak(b"evidence of %d" % i)))
             for i, m in enumerate(world.evals) if i in members]
    world.keeper.settle(jid, votes)


def metric(p: OracleProc, name: str, **labels: str) -> float:
    """A sample of the oracle's /metrics (0 when absent)."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels
                   else "")
    for line in p.get("/metrics").text.splitlines():
        if line.startswith(want + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def api_vote(p: OracleProc, jid: int) -> dict[str, Any] | None:
    r = p.get(f"/votes/{jid}")
    return r.json() if r.status_code == 200 else None


def assert_nonces(world: World, p: OracleProc, n0: int) -> None:
    """No nonce reused (rows sharing a nonce are one transaction and its replacements) and no
    gap: the nonces this DB signed are exactly those the signer used on-chain since n0."""
    txs = rows(p, "SELECT nonce, status FROM txs")
    by_nonce: dict[int, list[str]] = {}
    for n, st in txs:
        by_nonce.setdefault(int(n), []).append(str(st))
    for n, sts in by_nonce.items():
        assert len(sts) - sts.count("replaced") == 1, f"nonce {n} used by {sts}"
    n1 = int(world.keeper.w3.eth.get_transaction_count(p.member, "latest"))
    assert set(by_nonce) == set(range(n0, n1)), (sorted(by_nonce), n0, n1)


def assert_clean_log(p: OracleProc, secrets: list[str]) -> int:
    """Every line of the oracle's log is a JSON object and holds no secret; returns the count."""
    lines = [ln for ln in p.log_text().splitlines() if ln.strip()]
    for ln in lines:
        doc = json.loads(ln)
        assert isinstance(doc, dict) and {"ts", "level", "msg"} <= set(doc), ln
        for s in secrets:
            assert s.lower() not in ln.lower(), f"a secret in {p.name}'s log"
    return len(lines)


@pytest.fixture(autouse=True)
def _logs_clean(cluster: Cluster) -> Iterator[None]:
    """After each test: every oracle log line of it is JSON and free of the dev keys."""
    yield
    secrets = [key_hex(i) for i in range(20)]
    for p in cluster.procs:
        if p.proc is not None:
            p.stop()
            assert_clean_log(p, secrets)


def figure(name: str, value: float) -> None:
    FIGURES[name] = value
    out = os.environ.get("PACTBOND_FIGURES_FILE")  # benchmarks collect every run's figures
    if out:
        with open(out, "a") as f:
            f.write(json.dumps({"name": name, "value": value}) + "\n")


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    """The measured figures, together at the end of the module (shown with -s)."""
    yield
    print("\n" + "\n".join(f"[figure] {k}: {v:.2f}" for k, v in FIGURES.items()))


# -- F1-F4: SIGKILL at six points, restart ----------------------------------------------------


# `make faults-long` runs each kill point PACTBOND_FAULT_KILL_RUNS times (20: 120 SIGKILLs)
KILL_RUNS = int(os.environ.get("PACTBOND_FAULT_KILL_RUNS", "1"))


@pytest.mark.parametrize("run", range(KILL_RUNS))
@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_at_point__restart__one_settlement_same_vote_no_nonce_reuse(
        point: str, run: int, world: World, cluster: Cluster, pid: int) -> None:
    a = trio(world, cluster)[0]
    w3 = world.keeper.w3
    since = int(w3.eth.block_number)
    n0 = int(w3.eth.get_transaction_count(dev_account(A).address, "latest"))
    a.start(kill_at=point)
    jid = deliver(world, pid, a.api, {"answer": "42"}, value=VALUE)
    assert a.wait_exit(30) == -signal.SIGKILL, f"{a.name} did not die at {point}"

    # what the dead process left: read the file directly
    evaluation = rows(a, "SELECT score, evidence_hash FROM evaluations WHERE job_id = ?", (jid,))
    assert len(evaluation) == 1
    before = vote_row(a, jid)
    assert (before is None) == (point == "evaluated")
    txs_before = rows(a, "SELECT nonce, tx_hash FROM txs")
    assert len(txs_before) == (1 if point in ("tx_persisted", "broadcast", "receipt") else 0)

    t0 = time.monotonic()
    a.start()
    up = time.monotonic()
    wait_for(lambda: counted(world, jid, a.member, since), timeout=20, what="A's vote counted")
    figure(f"F1-F4 {point}: restart -> vote counted on-chain (s)", time.monotonic() - t0)
    figure(f"F1-F4 {point}: API up -> vote counted on-chain (s)", time.monotonic() - up)
    wait_for(lambda: intent_status(a, jid) == "done", timeout=20, what="A's intent done")
    figure(f"F1-F4 {point}: restart -> intent done (s)", time.monotonic() - t0)

    post_others(world, jid)
    j = wait_for(lambda: (j := world.keeper.job(jid)).state == JobState.SETTLED and j,
                 timeout=20, what="settled")
    served = api_vote(a, jid)
    a.stop()

    assert len(settlements(world, jid, since)) == 1
    mine = counted(world, jid, a.member, since)
    assert len(mine) == 1
    assert len(j.round0) == 3
    assert rows(a, "SELECT COUNT(*) FROM votes WHERE job_id = ? AND round = 0", (jid,)) == [(1,)]
    after = vote_row(a, jid)
    assert after is not None
    # the vote that survived the kill is the one posted, served and counted: no second one
    assert after[:2] == (int(evaluation[0][0]), bytes(evaluation[0][1]))
    if before is not None:
        assert after == before
    assert served is not None and served["signature"] == "0x" + after[2].hex()
    assert served["score_bps"] == after[0] == mine[0].score_bps
    assert mine[0].evidence_hash == after[1]
    if txs_before:  # the persisted transaction was the one sent (or bumped): same nonce
        txs_after = rows(a, "SELECT nonce, tx_hash FROM txs")
        assert {n for n, _ in txs_after} == {txs_before[0][0]} and txs_before[0] in txs_after
    assert_nonces(world, a, n0)


# -- F5: the same job delivered 100 times ---------------------------------------------------


def upload_many(api: str, data: bytes, n: int) -> list[int]:
    """POST the same bytes n times from 8 threads; the status codes."""
    codes: list[int] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for _ in range(k):
            r = requests.post(f"{api}/deliverables", data=data, timeout=10)
            with lock:
                codes.append(r.status_code)

    threads = [threading.Thread(target=worker, args=(n // 8 + (i < n % 8),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return codes


def rewind(p: OracleProc, block: int) -> None:
    """Send the stopped oracle's watch cursor back: every event since `block` is read again."""
    with closing(sqlite3.connect(db_path(p), isolation_level=None)) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'cursor'", (str(block - 1),))
        db.execute("DELETE FROM blocks")


def cursor(p: OracleProc) -> int:
    got = rows(p, "SELECT value FROM meta WHERE key = 'cursor'")
    return int(got[0][0]) if got else -1


def test_same_job_delivered_100_times__one_vote_at_most_one_tx(
        world: World, cluster: Cluster, pid: int) -> None:
    a = trio(world, cluster)[0]
    w3 = world.keeper.w3
    since = int(w3.eth.block_number)
    n0 = int(w3.eth.get_transaction_count(dev_account(A).address, "latest"))
    a.start()
    data = json.dumps({"answer": "the same, again"}).encode()
    jid = world.buyer.open_job(pid, world.agent.address, VALUE)
    world.agent.accept(jid)
    codes = upload_many(a.api, data, 100)
    world.agent.submit(jid, keccak(data))
    codes += upload_many(a.api, data, 100)
    assert len(codes) == 200 and set(codes) <= {200, 201} and codes.count(201) >= 1
    wait_for(lambda: counted(world, jid, a.member, since), timeout=20, what="A's vote counted")

    # re-delivery: after a SIGKILL the job's events are read again from the start, with 100
    # more uploads while it re-reads
    a.kill()
    rewind(a, since)
    a.start()
    head = int(w3.eth.block_number)
    codes = upload_many(a.api, data, 100)
    assert set(codes) == {200}  # already stored: never a second copy
    wait_for(lambda: cursor(a) >= head - 1, timeout=20, what="events read again")
    wait_for(lambda: intent_status(a, jid) == "done", timeout=20, what="intent done")
    # the restarted process evaluated and signed nothing: it found its stored results
    assert metric(a, "pactbond_jobs_evaluated_total") == 0
    assert metric(a, "pactbond_votes_signed_total") == 0

    post_others(world, jid)
    wait_for(lambda: world.keeper.job(jid).state == JobState.SETTLED, timeout=20, what="settled")
    a.stop()
    assert rows(a, "SELECT COUNT(*) FROM votes WHERE job_id = ?", (jid,)) == [(1,)]
    assert rows(a, "SELECT COUNT(*) FROM evaluations WHERE job_id = ?", (jid,)) == [(1,)]
    assert rows(a, "SELECT COUNT(*) FROM blobs WHERE kind = 'deliverable'") == [(1,)]
    intents = rows(a, "SELECT id FROM intents WHERE kind = 'vote' AND job_id = ?", (jid,))
    assert len(intents) == 1
    # at most one transaction: one nonce (a gas bump would replace it under the same nonce)
    sent = rows(a, "SELECT nonce, status FROM txs WHERE intent_id = ?", (intents[0][0],))
    assert len({n for n, _ in sent}) <= 1 and len([s for _, s in sent if s != "replaced"]) <= 1
    assert len(counted(world, jid, a.member, since)) == 1
    assert len(settlements(world, jid, since)) == 1
    assert_nonces(world, a, n0)


# -- F6: a conflicting vote for the same job and round ---------------------------------------


def test_store__second_different_vote__refused_and_nothing_signed(tmp_path: Path) -> None:
    s = Store(tmp_path / "o.db")
    calls: list[int] = []

    def sign() -> bytes:
        calls.append(1)
        return b"\x01" * 65

    d, sp, ev = keccak(b"d"), keccak(b"s"), keccak(b"e")
    first = s.sign_vote(7, 0, 9_000, ev, d, sp, 100, "0xM", sign)
    assert s.sign_vote(7, 0, 9_000, ev, d, sp, 100, "0xM", sign) == first  # same: stored one
    with pytest.raises(ConflictingVoteError):
        s.sign_vote(7, 0, 1_000, ev, d, sp, 100, "0xM", sign)
    with pytest.raises(ConflictingVoteError):
        s.sign_vote(7, 0, 9_000, keccak(b"other evidence"), d, sp, 100, "0xM", sign)
    assert calls == [1]
    assert s.vote(7, 0) == first and s.count_votes() == 1
    # nor can the row be changed or dropped behind the store's back
    for sql in ("UPDATE votes SET score = 1", "DELETE FROM votes"):
        with pytest.raises(ConflictingVoteError), s.tx() as db:
            db.execute(sql)
    assert s.vote(7, 0) == first
    s.close()


def test_store__batch_item_differing_from_the_signed_vote__refused(tmp_path: Path) -> None:
    s = Store(tmp_path / "o.db")
    d, sp, ev = keccak(b"d"), keccak(b"s"), keccak(b"e")
    s.sign_vote(7, 0, 9_000, ev, d, sp, 100, "0xM", lambda: b"\x01" * 65)
    s.sign_vote(8, 0, 4_000, ev, d, sp, 100, "0xM", lambda: b"\x02" * 65)
    calls: list[bytes] = []

    def sign() -> bytes:
        calls.append(b"")
        return b"\x03" * 65

    with pytest.raises(ConflictingVoteError):
        s.sign_batch(keccak(b"root"), 0, 100, "0xM", [(7, 9_000, ev), (8, 5_000, ev)], sign)
    with pytest.raises(ConflictingVoteError):  # a job without a signed vote cannot be batched
        s.sign_batch(keccak(b"root"), 0, 100, "0xM", [(9, 9_000, ev)], sign)
    assert calls == [] and s._q("SELECT COUNT(*) FROM batches") == [(0,)]
    assert s.sign_batch(keccak(b"ok"), 0, 100, "0xM", [(7, 9_000, ev), (8, 4_000, ev)],
                        sign) == b"\x03" * 65
    s.close()


def test_conflicting_vote_after_restart__refused_alerted_nothing_posted(
        world: World, cluster: Cluster, pid: int) -> None:
    a = trio(world, cluster)[0]
    since = int(world.keeper.w3.eth.block_number)
    a.start(kill_at="signed")
    jid = deliver(world, pid, a.api, {"answer": "42"}, value=VALUE)
    assert a.wait_exit(30) == -signal.SIGKILL
    signed = vote_row(a, jid)
    assert signed is not None and signed[0] == 10_000
    # the evaluation behind the signed vote now says something else (a bug, a bad migration,
    # a hand edit): the oracle must not sign the new score, nor post a vote it would not sign
    with closing(sqlite3.connect(db_path(a), isolation_level=None)) as db:
        db.execute("UPDATE evaluations SET score = 1234 WHERE job_id = ?", (jid,))

    a.start()
    wait_for(lambda: metric(a, "pactbond_alerts_total", kind="conflict") >= 1, timeout=15,
             what="conflict alert")
    time.sleep(2.0)  # ~10 more ticks: the refusal holds, and is alerted once
    assert metric(a, "pactbond_alerts_total", kind="conflict") == 1
    assert metric(a, "pactbond_votes_signed_total") == 0
    alerts = [json.loads(ln) for ln in a.log_text().splitlines() if "ALERT" in ln]
    assert len(alerts) == 1 and alerts[0]["alert"] == "conflict"
    assert f"job {jid}" in alerts[0]["msg"] and "refusing to sign score 1234" in alerts[0]["msg"]
    assert vote_row(a, jid) == signed  # the one signature, unchanged
    served = api_vote(a, jid)
    assert served is not None and served["signature"] == "0x" + signed[2].hex()
    assert rows(a, "SELECT COUNT(*) FROM txs") == [(0,)]
    assert intent_status(a, jid) is None
    assert counted(world, jid, a.member, since) == []


# -- F7: someone else posts a subset of the votes first --------------------------------------


def test_others_post_a_subset_first__third_vote_still_posted_and_counted(
        world: World, cluster: Cluster, pid: int) -> None:
    a, b, c = trio(world, cluster)
    net, w3 = world.devnet, world.keeper.w3
    since = int(w3.eth.block_number)
    balances = {i: int(w3.eth.get_balance(dev_account(i).address)) for i in (A, B)}
    try:
        # A and B cannot pay for gas: they sign and serve their votes but post nothing
        for i in (A, B):
            net.rpc("anvil_setBalance", [dev_account(i).address, "0x0"])
        a.start()
        b.start()
        jid = deliver(world, pid, a.api, {"answer": "42"}, value=VALUE)
        docs = [wait_for(lambda p=p: api_vote(p, jid), timeout=20, what=f"{p.name}'s vote")
                for p in (a, b)]
        world.keeper.settle(jid, [(d["member"], d["score_bps"],
                                   bytes.fromhex(d["evidence_hash"][2:]), d["deadline"],
                                   bytes.fromhex(d["signature"][2:])) for d in docs])
        j = world.keeper.job(jid)
        assert j.state == JobState.VERDICT and len(j.round0) == 2
    finally:
        for i, bal in balances.items():
            net.rpc("anvil_setBalance", [dev_account(i).address, hex(bal)])
    c.start()
    wait_for(lambda: counted(world, jid, c.member, since), timeout=20, what="C's vote counted")
    wait_for(lambda: intent_status(c, jid) == "done", timeout=20, what="C's intent done")
    for p in (a, b):  # their votes were counted by someone else's transaction: done as well
        wait_for(lambda p=p: intent_status(p, jid) == "done", timeout=20, what="intent done")
    j = world.keeper.job(jid)
    assert j.state == JobState.SETTLED and len(j.round0) == 3
    ev = counted(world, jid, c.member, since)
    assert len(ev) == 1
    assert int(w3.eth.get_block(ev[0].block_number)["timestamp"]) <= j.deadline
    assert len(settlements(world, jid, since)) == 1
    for p in (a, b):
        assert len(counted(world, jid, p.member, since)) == 1
        assert metric(p, "pactbond_alerts_total", kind="balance") >= 1
        p.stop()
        assert rows(p, "SELECT COUNT(*) FROM txs") == [(0,)]


def in_process(world: World, manifest_path: Path, docs: Path, tmp_path: Path,
               wrap: Callable[[Any], Any] | None = None, **over: Any) -> tuple[Oracle, Store]:
    """Member A's oracle in this process (the test calls its tick), on a fresh store; `wrap`
    wraps each evaluator plugin (a test's fault)."""
    cfg = OracleSettings(rpc_url=world.devnet.url, manifest=manifest_path,
                         committees=[world.cid], key_env="UNUSED", db=tmp_path / "o.db",
                         documents=[docs], confirmations=0, **over)
    store = Store(cfg.db)
    plugins = plugin_loader(cfg)
    o = Oracle(cfg, Pactbond.connect(world.devnet.url, manifest_path, KeyWallet(dev_account(A))),
               store, Library(cfg.documents, cfg.document_urls),
               plugins if wrap is None else (lambda name: wrap(plugins(name))))
    return o, store


class Wrapped:
    """A registered evaluator plugin whose `evaluate` a test replaces."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.version = inner.name, inner.version
        self.deterministic = inner.deterministic

    def check_params(self, params: Any) -> None:
        self.inner.check_params(params)

    def evaluate(self, ctx: Any) -> Any:
        return self.inner.evaluate(ctx)


def test_peer_vote_in_our_batch_posted_by_someone_else__ours_still_posted(
        world: World, pid: int, manifest_path: Path, docs: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The race behind F7, in-process with the service's own code: our call carries a peer's
    vote; between building it and simulating it, someone else posts that peer's vote. The
    simulation then says "vote: duplicate vote" about the peer's vote, not ours."""
    since = int(world.keeper.w3.eth.block_number)
    o, store = in_process(world, manifest_path, docs, tmp_path, start_block=since)
    data = json.dumps({"answer": "42"}).encode()
    store.put_blob(keccak(data), "deliverable", data)
    jid = deliver_hash(world, pid, keccak(data))
    b = world.evals[1]
    b_vote = b.sign_vote(b.vote_for(jid, 10_000, keccak(b"B's evidence")))
    raced: list[int] = []
    real_vote_call = o._vote_call

    def peer_votes(*_: Any) -> list[Any]:
        return [] if raced else [b_vote.as_tuple()]

    def vote_call(*args: Any) -> Any:
        call = real_vote_call(*args)  # ours + B's, simulated fine
        if not raced:
            raced.append(1)
            world.keeper.settle(jid, [b_vote])  # meanwhile: B's vote counted
        return call

    monkeypatch.setattr(o, "peer_votes", peer_votes)
    monkeypatch.setattr(o, "_vote_call", vote_call)
    o.tick()
    assert raced and counted(world, jid, b.address, since)
    assert intent_status_of(store, jid) != "done"  # ours is not counted: not done
    wait_for(lambda: (o.tick(), counted(world, jid, o.me, since))[1], timeout=20, every=0.2,
             what="our vote posted after the race")
    wait_for(lambda: (o.tick(), intent_status_of(store, jid) == "done")[1], timeout=20,
             every=0.2, what="intent done once counted")
    assert len(counted(world, jid, o.me, since)) == 1
    store.close()


@pytest.mark.parametrize("foreseen", [True, False], ids=["foreseen", "refused"])
def test_batch_settling_more_than_32__split__every_job_settles(
        world: World, docs: Path, manifest_path: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        foreseen: bool) -> None:
    """The other members' votes are in on 34 zero-window jobs, so our vote settles each, and
    one call may settle at most 32 (ADR 013). In-process with the service's own code: the
    oracle foresees it from the counted votes and splits its batch before signing; or, when
    its read foresaw no settlement (patched: ADR 013's race, the peers' votes landing after
    the read), the escrow refuses the 34-vote batch and the oracle splits it then. Either way
    it posts batches, not 34 single votes; every job settles, each of our votes counted once."""
    n = 34
    for e in world.evals:  # each job reserves every member's penalty
        e.stake(n * 5 * E18, evaluator=True)
    pid = world.pact(spec_hash=schema_spec(docs), challenge_window=0)
    since = int(world.keeper.w3.eth.block_number)
    o, store = in_process(world, manifest_path, docs, tmp_path, start_block=since)
    data = json.dumps({"answer": "42"}).encode()
    store.put_blob(keccak(data), "deliverable", data)
    jids = []
    for _ in range(n):
        jid = world.buyer.open_job(pid, world.agent.address, 10**15)
        world.agent.accept(jid)
        world.agent.submit(jid, keccak(data))
        post_others(world, jid)
        jids.append(jid)
    if not foreseen:
        monkeypatch.setattr(o, "_settling", lambda group: 0)
    caplog.set_level("INFO", logger="pactbond.oracle")
    wait_for(lambda: (o.tick(), all(world.keeper.job(j).state == JobState.SETTLED
                                     for j in jids))[1], timeout=60, every=0.2,
             what="every job settled")
    splits = [r.fields for r in caplog.records  # type: ignore[attr-defined]
              if r.getMessage() == "batch settles more jobs than one call may: split"]
    assert splits and (splits[0]["jobs"], splits[0]["foreseen"]) == (n, foreseen)
    with closing(sqlite3.connect(store.path)) as db:
        sizes = [k for (k,) in db.execute(
            "SELECT (SELECT COUNT(*) FROM batch_members b WHERE b.batch_intent = i.id) "
            "FROM txs t JOIN intents i ON i.id = t.intent_id "
            "WHERE i.kind = 'batch' AND t.status != 'superseded'")]  # mined, maybe not final
    assert len(sizes) >= 2 and max(sizes) <= 32 and sum(sizes) == n  # batches, not singles
    for j in jids:
        assert len(counted(world, j, o.me, since)) == 1
    store.close()


def sample(o: Oracle, name: str, **labels: str) -> float:
    return o.metrics.registry.get_sample_value(name, labels) or 0.0


def statuses(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every (status, note) the oracle gives an intent from now on."""
    seen: list[tuple[str, str]] = []
    real = store.set_intent

    def set_intent(intent_id: int, status: str, note: str = "") -> None:
        seen.append((status, note))
        real(intent_id, status, note)

    monkeypatch.setattr(store, "set_intent", set_intent)
    return seen


@pytest.mark.parametrize("where", ["simulation", "chain"])
def test_vote_call_racing_a_transition__stale_fields__rebuilt_never_failed_and_counted(
        world: World, pid: int, manifest_path: Path, docs: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """ADR 011: a vote call carries the job's fields, and fields the job no longer has revert
    "escrow: stale job fields". That is a race (the job moved between the oracle's read and its
    call), never the intent's failure: the next tick reads the job again and rebuilds.
    - simulation: the read the call was built from was behind the head (the job's fields as
      of the block before its submission); the simulation refuses it, the intent waits, and
      the next tick's call posts our vote.
    - chain: between the simulation and the mining of our call, the other members post every
      reserved vote, ours included (as a peer fetches it from our API): round 0 closes and
      the job settles, so our transaction reverts as stale; the intent ends done, counted."""
    since = int(world.keeper.w3.eth.block_number)
    o, store = in_process(world, manifest_path, docs, tmp_path, start_block=since)
    data = json.dumps({"answer": "42"}).encode()
    store.put_blob(keccak(data), "deliverable", data)
    jid = deliver_hash(world, pid, keccak(data))
    seen = statuses(store, monkeypatch)
    raced: list[Any] = []
    if where == "simulation":
        (sub,) = world.keeper.events(since, names="JobSubmitted", job_id=jid)
        behind = world.keeper.job(jid, block=sub.block_number - 1).fields.as_tuple()
        real_call = o.pb._esc.call

        def call(name: str, *args: Any) -> Any:
            if name == "settle" and not raced:
                raced.append(args[2])
                args = (*args[:2], behind, *args[3:])
            return real_call(name, *args)

        monkeypatch.setattr(o.pb._esc, "call", call)
    else:
        real_send = o.txm.send

        def send(it: Any, c: Any, gas: int) -> Any:
            if it.kind == "vote" and not raced:
                mine = store.vote(jid, 0)
                assert mine is not None
                ours = (o.me, mine.score, mine.evidence_hash, mine.deadline, mine.signature)
                world.keeper.settle(jid, [*world.votes(jid, [0, 10_000, 10_000])[1:], ours])
                assert world.keeper.job(jid).state == JobState.SETTLED
                raced.append(real_send(it, c, gas))
                return raced[-1]
            return real_send(it, c, gas)

        monkeypatch.setattr(o.txm, "send", send)
    o.tick()
    assert raced, "no vote call was built"
    if where == "simulation":
        assert sample(o, "pactbond_stale_calls_total", kind="vote") == 1
        assert intent_status_of(store, jid) == "new" and not counted(world, jid, o.me, since)
    wait_for(lambda: (o.tick(), intent_status_of(store, jid) == "done")[1], timeout=20,
             every=0.2, what="the vote intent done")
    assert all(status != "failed" for status, _ in seen), seen
    assert sample(o, "pactbond_failures_total", kind="simulate") == 0
    assert sample(o, "pactbond_votes_counted_total") == 1
    (ev,) = counted(world, jid, o.me, since)  # counted once
    if where == "simulation":  # our rebuilt call posted it
        assert world.keeper.w3.eth.get_transaction(ev.tx_hash)["from"] == o.me
    else:  # ours reverted as stale, after the others' call had counted our vote and settled
        assert len(settlements(world, jid, since)) == 1
        w3 = world.keeper.w3
        r = w3.eth.get_transaction_receipt(raced[0].tx_hash)
        assert r["status"] == 0 and r["blockNumber"] > ev.block_number
        tx = w3.eth.get_transaction(raced[0].tx_hash)
        with pytest.raises(REVERTS) as e:
            w3.eth.call({"from": tx["from"], "to": tx["to"], "data": tx["input"]},
                        r["blockNumber"])
        assert revert_reason(e.value) == "escrow: stale job fields"
        assert seen[-1] == ("done", "counted")
    store.close()


def test_keeper_finalize__feedback_evidence_is_the_first_counted_vote(
        world: World, manifest_path: Path, docs: Path, tmp_path: Path) -> None:
    """ADR 011: nothing stores the first counted vote's evidence; the keeper's finalize passes
    a counted round-0 vote (pb.evidence) and Feedback carries its evidence hash: here member
    B's, counted in an earlier call than A's and C's (so not simply member 0's, nor the
    finalizing call's)."""
    hour = 3_600
    pid = world.pact(challenge_window=hour, appeal_window=hour)
    since = int(world.keeper.w3.eth.block_number)
    jid = world.job(pid, VALUE)
    a, b, c = world.votes(jid, [9_000, 8_000, 7_000])
    world.keeper.settle(jid, [b])
    world.keeper.settle(jid, [c, a])
    world.warp(hour + 1)
    assert world.keeper.job(jid).state == JobState.VERDICT
    o, store = in_process(world, manifest_path, docs, tmp_path, start_block=since)
    wait_for(lambda: (o.tick(), world.keeper.job(jid).state == JobState.SETTLED)[1],
             timeout=20, every=0.2, what="finalized by the oracle")
    (settled,) = settlements(world, jid, since)
    assert world.keeper.w3.eth.get_transaction(settled.tx_hash)["from"] == o.me
    first = next(e for e in world.keeper.events(since, names="VoteCounted", job_id=jid)
                 if e.round == 0)
    assert first.member == b.member and first.evidence_hash == b.vote.evidence_hash
    (fb,) = world.keeper.events(since, names="Feedback", job_id=jid)
    assert fb.evidence_hash == b.vote.evidence_hash
    assert fb.score_bps == 8_000  # the median of the three
    store.close()


def test_keeper_duty_done_by_someone_else_then_due_again__reopened_and_finalized(
        world: World, manifest_path: Path, docs: Path, tmp_path: Path) -> None:
    """Our finalize intent was closed because another keeper's finalize got there first; a
    reorg then undid theirs, so the chain shows the job due again. The oracle reopens its
    intent and finalizes (modelled in-process: the intent is stored done with the refusal the
    simulation gave, while the job is in VERDICT past its challenge window)."""
    hour = 3_600
    pid = world.pact(challenge_window=hour, appeal_window=hour)
    since = int(world.keeper.w3.eth.block_number)
    jid = world.job(pid, VALUE)
    world.keeper.settle(jid, world.votes(jid, [9_000, 9_000, 9_000]))
    world.warp(hour + 1)
    assert world.keeper.job(jid).state == JobState.VERDICT
    o, store = in_process(world, manifest_path, docs, tmp_path, start_block=since)
    it = store.intend("finalize", jid)
    store.set_intent(it.id, "done", "escrow: no verdict")
    wait_for(lambda: (o.tick(), world.keeper.job(jid).state == JobState.SETTLED)[1], timeout=20,
             every=0.2, what="finalized by the oracle")
    (ev,) = world.keeper.events(since, names="JobSettled", job_id=jid)
    assert world.keeper.w3.eth.get_transaction(ev.tx_hash)["from"] == o.me
    store.close()


def test_plugin_raising_any_exception__tick_goes_on_and_the_vote_says_why(
        world: World, pid: int, manifest_path: Path, docs: Path, tmp_path: Path) -> None:
    """A plugin bug (KeyError, not EvaluatorError) used to escape the tick: in the service it
    ended the process, which restarted into the same job. Now it is the evaluator's failure:
    retried, then a score-0 vote whose evidence names it."""
    since = int(world.keeper.w3.eth.block_number)

    class Buggy(Wrapped):
        def evaluate(self, ctx: Any) -> Any:
            raise KeyError("answers")

    o, store = in_process(world, manifest_path, docs, tmp_path, start_block=since,
                          evaluate_retries=1, wrap=Buggy)
    data = json.dumps({"answer": "42"}).encode()
    store.put_blob(keccak(data), "deliverable", data)
    jid = deliver_hash(world, pid, keccak(data))
    wait_for(lambda: (o.tick(), counted(world, jid, o.me, since))[1], timeout=20, every=0.2,
             what="the score-0 vote posted")
    (ev,) = counted(world, jid, o.me, since)
    assert ev.score_bps == 0
    packet = json.loads(store.blob(ev.evidence_hash, "evidence") or b"{}")
    assert "KeyError" in json.dumps(packet)
    store.close()


def test_plugin_hitting_a_local_fault__vote_withheld_then_cast_once_it_clears(
        world: World, pid: int, manifest_path: Path, docs: Path, tmp_path: Path) -> None:
    """Disk full or out of memory in the plugin is this oracle's trouble, not the deliverable's:
    no score-0 vote (that could never be taken back), retried until it clears."""
    since = int(world.keeper.w3.eth.block_number)
    full = [True]

    class DiskFull(Wrapped):
        def evaluate(self, ctx: Any) -> Any:
            if full[0]:
                raise OSError(28, "No space left on device")
            return self.inner.evaluate(ctx)

    o, store = in_process(world, manifest_path, docs, tmp_path, start_block=since,
                          evaluate_retries=1, wrap=DiskFull)
    data = json.dumps({"answer": "42"}).encode()
    store.put_blob(keccak(data), "deliverable", data)
    jid = deliver_hash(world, pid, keccak(data))
    for _ in range(5):
        o.tick()
    assert store.vote(jid, 0) is None and counted(world, jid, o.me, since) == []
    full[0] = False
    wait_for(lambda: (o.tick(), counted(world, jid, o.me, since))[1], timeout=20, every=0.2,
             what="the vote cast once the disk has room")
    (ev,) = counted(world, jid, o.me, since)
    assert ev.score_bps == 10_000
    store.close()


def test_one_job_raising__the_others_still_voted_and_posted(
        world: World, pid: int, manifest_path: Path, docs: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever one job raises (here a ValueError from its vote step), the tick goes on: the
    other job's vote is signed and posted, the transactions in flight are followed."""
    since = int(world.keeper.w3.eth.block_number)
    o, store = in_process(world, manifest_path, docs, tmp_path, start_block=since)
    data = json.dumps({"answer": "42"}).encode()
    store.put_blob(keccak(data), "deliverable", data)
    bad, good = deliver_hash(world, pid, keccak(data)), deliver_hash(world, pid, keccak(data))
    real_vote = o.vote

    def vote(j: Any, *args: Any) -> None:
        if j.id == bad:
            raise ValueError("boom")
        real_vote(j, *args)

    monkeypatch.setattr(o, "vote", vote)
    wait_for(lambda: (o.tick(), counted(world, good, o.me, since))[1], timeout=20, every=0.2,
             what="the other job's vote posted")
    assert counted(world, bad, o.me, since) == []
    assert o.metrics.failures.labels("job")._value.get() >= 1
    store.close()


def test_node_fee_cap__no_transaction_priced_past_it(world: World, manifest_path: Path,
                                                     tmp_path: Path) -> None:
    """geth and reth refuse, at every broadcast, a transaction whose gas x max fee passes their
    --rpc.txfeecap (1 ETH by default); its nonce then blocks every later one. Fees are held
    under it (with the fee-cap alert), initial and bumped alike."""
    from pactbond.calls import Call
    from pactbond.oracle.metrics import Metrics
    from pactbond.oracle.txs import TxManager, TxPolicy

    pb = Pactbond.connect(world.devnet.url, manifest_path, KeyWallet(dev_account(A)))
    store, metrics = Store(tmp_path / "t.db"), Metrics()
    gas, fee_cap = 2_000_000, 10**15  # 0.5 gwei a gas, under anvil's 2 x base fee + tip
    txm = TxManager(pb.w3, pb._sender(), pb.chain_id, store, metrics,
                    TxPolicy(tx_fee_cap_wei=fee_cap, bump_after_blocks=1))
    assert txm.fee_cap(gas) == fee_cap // gas
    tx = txm.send(store.intend("vote", 10**9, 0), Call(to=pb.address, data=b"", name="probe"),
                  gas)
    try:
        assert tx is not None and tx.max_fee * gas <= fee_cap
        assert metrics.alerts.labels("fee_cap")._value.get() >= 1
        assert txm._bump(tx, int(pb.w3.eth.block_number)) is False  # already at the capped fee
        assert all(t.max_fee * gas <= fee_cap for t in store.txs_of(tx.intent_id))
    finally:  # a fee under the base fee stays pending: it must not hold A's later nonces
        for t in store.txs_of(store.intend("vote", 10**9, 0).id):
            world.devnet.rpc("anvil_dropTransaction", ["0x" + t.tx_hash.hex()])
        store.close()


def test_vote_intent_closed_by_a_read_that_was_not_final__owed_again_and_posted(
        world: World, pid: int, manifest_path: Path, docs: Path, tmp_path: Path) -> None:
    """Our vote intent was marked failed by a simulation against a lagging backend ("vote: job
    not in evaluation"), or done by a count a reorg then undid; the chain still owes our vote
    and the round is open. The intent is reopened (at most twice a minute) and the vote posted:
    before, it was never posted again."""
    since = int(world.keeper.w3.eth.block_number)
    o, store = in_process(world, manifest_path, docs, tmp_path, start_block=since)
    data = json.dumps({"answer": "42"}).encode()
    store.put_blob(keccak(data), "deliverable", data)
    jid = deliver_hash(world, pid, keccak(data))
    it = store.intend("vote", jid, 0)
    store.set_intent(it.id, "failed", "vote: job not in evaluation")
    with closing(sqlite3.connect(o.cfg.db)) as db, db:  # closed a minute ago
        db.execute("UPDATE intents SET updated_at = updated_at - 60 WHERE id = ?", (it.id,))
    wait_for(lambda: (o.tick(), counted(world, jid, o.me, since))[1], timeout=20, every=0.2,
             what="our vote posted")
    assert len(counted(world, jid, o.me, since)) == 1
    store.close()


def test_hidden_reveal__only_once_the_job_has_ended(world: World, manifest_path: Path,
                                                    docs: Path, tmp_path: Path) -> None:
    """A job's hidden reveal stays private at its round-0 verdict (a challenge and the appeal
    committee may still evaluate against the same set) and is released once the job has ended,
    at the oracle's confirmation depth."""
    hour = 3_600
    pid = world.pact(challenge_window=hour, appeal_window=hour)
    jid = world.job(pid, VALUE)
    world.keeper.settle(jid, world.votes(jid, [9_000, 9_000, 9_000]))
    o, store = in_process(world, manifest_path, docs, tmp_path)
    o._head = int(world.keeper.w3.eth.block_number)
    assert world.keeper.job(jid).state == JobState.VERDICT
    assert o.revealable(jid) is False
    world.warp(hour + 1)
    world.keeper.finalize(jid)
    assert o.revealable(jid) is False  # the oracle has not seen that block yet
    o._head = int(world.keeper.w3.eth.block_number)
    assert o.revealable(jid) is True
    assert o.revealable(10**9) is False  # no such job: closed
    store.close()


def intent_status_of(store: Store, jid: int) -> str | None:
    got = store._q("SELECT status FROM intents WHERE kind = 'vote' AND job_id = ?", (jid,))
    return str(got[0][0]) if got else None


# -- F14: SIGTERM under load -----------------------------------------------------------------


def send_all(pb: Any, calls: list[tuple[Any, int]]) -> list[Any]:
    """Send calls from one client back to back (consecutive nonces), then wait for all: 20
    jobs opened in a couple of blocks rather than one block per transaction."""
    w3, wallet = pb.w3, pb._sender()
    nonce = int(w3.eth.get_transaction_count(wallet.address, "pending"))
    fees = pb._fees()
    hashes = [w3.eth.send_raw_transaction(wallet.sign_transaction({
        "from": wallet.address, "to": c.to, "data": c.data, "value": value,
        "chainId": pb.chain_id, "nonce": nonce + k, "gas": 1_500_000, **fees}))
        for k, (c, value) in enumerate(calls)]
    receipts = [w3.eth.wait_for_transaction_receipt(h, timeout=30) for h in hashes]
    assert all(r["status"] == 1 for r in receipts)
    return receipts


def open_jobs(world: World, pid: int, n: int, api: str) -> list[int]:
    """n jobs opened, accepted and submitted, each deliverable uploaded to `api`."""
    t = world.buyer.pact(pid)
    _, cv, av = world.buyer._check_open(pid, world.agent.address, VALUE, None)
    opened = send_all(world.buyer, [(world.buyer._esc.call(
        "open", t.as_tuple(), pid, world.agent.address, VALUE, cv, av), VALUE + t.evaluator_fee)
        for _ in range(n)])
    jids = [int(world.buyer._events(r, "JobOpened")[0]["args"]["job_id"]) for r in opened]
    fields = track_fields(world.buyer, opened)
    track_fields(world.agent, send_all(world.agent, [(world.agent._esc.call(
        "accept", j, t.as_tuple(), fields[j].as_tuple()), 0) for j in jids]), fields)
    hashes = [upload(api, json.dumps({"answer": f"job {j}"}).encode()) for j in jids]
    send_all(world.agent, [(world.agent._esc.call("submit", j, t.as_tuple(), fields[j].as_tuple(),
                                                  h, ""), 0)
                           for j, h in zip(jids, hashes, strict=True)])
    return jids


def test_sigterm_under_load__exits_0_within_10s__db_sound__nothing_lost(
        world: World, cluster: Cluster, pid: int) -> None:
    a = trio(world, cluster)[0]
    w3 = world.keeper.w3
    since = int(w3.eth.block_number)
    n0 = int(w3.eth.get_transaction_count(dev_account(A).address, "latest"))
    a.start()
    jids = open_jobs(world, pid, 20, a.api)
    # mid-work: some votes signed, most jobs still to evaluate, sign or post
    wait_for(lambda: rows(a, "SELECT COUNT(*) FROM votes")[0][0] >= 3, timeout=20, every=0.02,
             what="a few votes signed")
    code, took = a.terminate(15)
    figure("F14 SIGTERM -> exit (s)", took)
    assert code == 0 and took <= 10.0
    with closing(sqlite3.connect(db_path(a))) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    # finished writes: every vote has its evaluation, every transaction its intent, every
    # intent being sent a transaction
    assert rows(a, "SELECT COUNT(*) FROM votes v LEFT JOIN evaluations e USING (job_id, round) "
                   "WHERE e.job_id IS NULL") == [(0,)]
    # (a vote posted in a batch has its transaction through its batch intent)
    assert rows(a, "SELECT COUNT(*) FROM intents i WHERE status = 'sending' AND NOT EXISTS "
                   "(SELECT 1 FROM txs t WHERE t.intent_id = i.id OR t.intent_id IN "
                   "(SELECT batch_intent FROM batch_members b WHERE b.vote_intent = i.id))"
                ) == [(0,)]
    # stopped taking work: after "stopping", at most the job in hand is finished
    log = [json.loads(ln) for ln in a.log_text().splitlines()]
    after = log[[d["msg"] for d in log].index("stopping"):]
    busy = {d.get("job") for d in after if d["msg"] in ("evaluated", "vote signed", "tx signed")}
    assert len(busy) <= 1, after
    assert after[-1]["msg"] == "oracle stopped"
    done_before = rows(a, "SELECT COUNT(*) FROM votes")[0][0]
    figure("F14 votes signed before SIGTERM (of 20)", done_before)

    # the rest is done after a restart: every job voted once, nothing signed twice
    a.start()
    wait_for(lambda: all(counted(world, j, a.member, since) for j in jids), timeout=30,
             what="all 20 votes counted")
    wait_for(lambda: rows(a, "SELECT COUNT(*) FROM intents WHERE kind = 'vote' "
                                   "AND status = 'done'") == [(20,)],
             timeout=20, what="all intents done")
    a.stop()
    assert rows(a, "SELECT COUNT(*) FROM votes") == [(20,)]
    for j in jids:
        assert len(counted(world, j, a.member, since)) == 1
    # one nonce per transaction intent; ready votes may share one (a batch)
    ((nonces, tx_intents),) = rows(a, "SELECT COUNT(DISTINCT nonce), COUNT(DISTINCT intent_id) "
                                      "FROM txs WHERE status != 'replaced'")
    assert nonces == tx_intents and 1 <= nonces <= 20
    assert_nonces(world, a, n0)


# -- F15: the database locked, read-only or full: fail closed --------------------------------


def test_db_locked__no_vote_until_released__then_proceeds(
        world: World, cluster: Cluster, pid: int) -> None:
    a = trio(world, cluster)[0]
    since = int(world.keeper.w3.eth.block_number)
    a.start()
    data = json.dumps({"answer": "locked out"}).encode()
    jid = world.buyer.open_job(pid, world.agent.address, VALUE)
    world.agent.accept(jid)
    upload(a.api, data)
    wait_for(lambda: rows(a, "SELECT COUNT(*) FROM jobs WHERE job_id = ?", (jid,)) == [(1,)],
             timeout=15, what="job followed")
    lock = sqlite3.connect(db_path(a), isolation_level=None, timeout=10)
    try:
        lock.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        world.agent.submit(jid, keccak(data))
        held = time.monotonic()
        while time.monotonic() - held < 5.5:  # past the store's 5 s busy timeout
            assert counted(world, jid, a.member, since) == []
            # the API reads on a connection of its own (WAL: readers are not blocked by a
            # writer), so it answers while the service waits out the lock
            r = requests.get(f"{a.api}/votes/{jid}", timeout=3)
            assert r.status_code == 404, r.text
            time.sleep(0.3)
        assert a.alive
        assert metric(a, "pactbond_failures_total", kind="store") >= 1
        assert vote_row(a, jid) is None
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    released = time.monotonic()
    wait_for(lambda: counted(world, jid, a.member, since), timeout=20, what="vote after release")
    figure("F15 lock released -> vote counted (s)", time.monotonic() - released)
    assert api_vote(a, jid) is not None and vote_row(a, jid) is not None
    a.stop()
    assert len(counted(world, jid, a.member, since)) == 1


@pytest.mark.parametrize("fault", ["readonly", "full"])
def test_db_readonly_or_full__nothing_signed__not_ready__no_crash_loop__then_proceeds(
        fault: str, world: World, cluster: Cluster, pid: int) -> None:
    a = trio(world, cluster)[0]
    since = int(world.keeper.w3.eth.block_number)
    data = json.dumps({"answer": f"disk {fault}"}).encode()
    with closing(Store(db_path(a))) as s:  # the bytes are there before the fault
        s.put_blob(keccak(data), "deliverable", data)
    a.start(extra_env={"PACTBOND_TEST_DB_FAULT": fault})
    started = time.monotonic()
    r = requests.post(f"{a.api}/deliverables", data=b"{}", timeout=15)
    assert r.status_code == 503 and r.json() == {"error": "storage unavailable"}
    jid = deliver_hash(world, pid, keccak(data))
    time.sleep(max(0.0, 3.5 - (time.monotonic() - started)))
    assert a.alive  # no crash (a supervisor would restart it into the same fault)
    assert counted(world, jid, a.member, since) == []
    assert api_vote(a, jid) is None and vote_row(a, jid) is None
    ready = a.get("/ready")
    assert ready.status_code == 503 and ready.json()["reason"].startswith("database: ")
    failures = metric(a, "pactbond_failures_total", kind="store")
    # backing off (0.2 s doubling to 5 s), not spinning: a handful of attempts in 3.5 s
    assert 1 <= failures <= 7, failures
    code, _ = a.terminate(15)
    assert code == 0

    a.start()
    wait_for(lambda: counted(world, jid, a.member, since), timeout=20, what="vote once healthy")
    assert a.get("/ready").status_code == 200
    a.stop()


def deliver_hash(world: World, pid: int, h: bytes) -> int:
    jid = world.buyer.open_job(pid, world.agent.address, VALUE)
    world.agent.accept(jid)
    world.agent.submit(jid, h)
    return jid


def test_store__intent_left_sending_without_a_live_tx__released(tmp_path: Path) -> None:
    """A crash (or a node error in on_final) after a transaction's status was written and
    before its intent's was leaves the intent 'sending' with nothing live behind it; nothing
    moved it again, so a vote whose settle reverted was never posted. Each tick releases such
    intents to be re-examined; live ones (single or batched) are left alone."""
    s = Store(tmp_path / "o.db")

    def tx_for(intent_id: int, nonce: int, status: str) -> None:
        t = s.save_tx(intent_id, nonce, b"raw", nonce.to_bytes(32, "big"), 1, 1)
        s.update_tx(t.id, status=status)

    a, b = s.intend("vote", 1), s.intend("finalize", 2)
    tx_for(a.id, 0, "confirmed")  # final, but on_final never ran
    tx_for(b.id, 1, "sent")  # live
    d, e = s.intend("vote", 3), s.intend("vote", 4)
    c = s.intend_batch(0, [d.id, e.id])
    tx_for(c.id, 2, "mined")
    assert s.release_orphans() == 1
    status = {i: s.intent(i).status for i in (a.id, b.id, c.id, d.id, e.id)}
    assert status == {a.id: "new", b.id: "sending", c.id: "sending", d.id: "sending",
                      e.id: "sending"}
    (ctx,) = s.txs_of(c.id)
    s.update_tx(ctx.id, status="confirmed")  # the batch final, its members never updated
    assert s.release_orphans() == 3
    assert [s.intent(i).status for i in (b.id, c.id, d.id, e.id)] == [
        "sending", "done", "new", "new"]
    assert s.release_orphans() == 0
    s.close()


def test_store__opened_by_several_processes_at_once__one_schema_no_error(
        tmp_path: Path) -> None:
    """The schema version is read under the write lock: two openers of a new database (the
    service and a CLI command) both saw version 0 and the second failed on "table exists"."""
    for k in range(10):
        path, errors = tmp_path / f"{k}.db", []

        def open_close(path: Path = path, errors: list[str] = errors) -> None:
            try:
                Store(path).close()
            except Exception as e:
                errors.append(repr(e))

        ts = [threading.Thread(target=open_close) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert errors == []
        with closing(sqlite3.connect(path)) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_store__older_attempt_mined__both_rows_in_one_write(tmp_path: Path) -> None:
    """A bump's original was mined: it becomes the followed attempt and the bump 'replaced' at
    once (two writes before: a crash between left the mined one 'replaced' and unfollowed)."""
    s = Store(tmp_path / "o.db")
    it = s.intend("vote", 1)
    first = s.save_tx(it.id, 0, b"raw0", b"\x01" * 32, 1, 1)
    bump = s.save_tx(it.id, 0, b"raw1", b"\x02" * 32, 2, 2, replaces=first.id)
    s.record_mined(bump.id, first.id, 42, b"\x03" * 32, 1)
    rows = {t.id: (t.status, t.mined_block, t.receipt_status) for t in s.txs_of(it.id)}
    assert rows == {first.id: ("mined", 42, 1), bump.id: ("replaced", None, None)}
    assert [t.id for t in s.live_txs()] == [first.id]
    s.close()


def test_store__new_database_private_to_the_service_user(tmp_path: Path) -> None:
    """It holds hidden-set reveals, votes and other agents' deliverables: 0600 in a 0700
    directory it creates (SQLite made it 0644)."""
    s = Store(tmp_path / "data" / "o.db")
    s.intend("vote", 1)
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    for f in (tmp_path / "data").iterdir():  # the database and its WAL files
        assert f.stat().st_mode & 0o077 == 0, f
    s.close()


def test_store__commit_fails_after_signing__signature_dropped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = (7, 0, 9_000, keccak(b"e"), keccak(b"d"), keccak(b"s"), 100, "0xM")
    for fault in ("full", "readonly"):
        monkeypatch.setenv("PACTBOND_TEST_DB_FAULT", fault)
        s = Store(tmp_path / f"{fault}.db")
        signed: list[bytes] = []

        def sign(out: list[bytes] = signed) -> bytes:
            out.append(b"\x01" * 65)
            return out[-1]

        with pytest.raises(StoreError, match=r"full|readonly"):
            s.sign_vote(*args, sign)
        assert s.vote(7, 0) is None and s.count_votes() == 0
        # full: signed inside the transaction, then the insert failed: the signature never
        # left sign_vote; read-only: the transaction did not even begin
        assert len(signed) == (1 if fault == "full" else 0)
        s.close()
    monkeypatch.setenv("PACTBOND_TEST_DB_FAULT", "bogus")
    with pytest.raises(StoreError, match="expected readonly or full"):
        Store(tmp_path / "bogus.db")


# -- F16, F20: start-up guards ---------------------------------------------------------------


def refused(p: OracleProc, secrets: list[str]) -> str:
    """Run a process that must refuse to start: its one stderr line."""
    p.start(wait=False)
    try:
        code = p.wait_exit(30)
    finally:
        p.kill()
        if p.proc is not None and p.proc.stdout is not None:
            p.proc.stdout.close()
    assert code != 0
    lines = [ln for ln in p.log_text().splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    for s in secrets:
        assert s.lower() not in p.log_text().lower()
    return lines[0]


PASSWORD = "pb test passphrase 7f3c"  # a test keystore's


@pytest.mark.parametrize("case", ["chain_id", "code_hash", "not_member", "password",
                                  "keystore_mode"])
def test_startup_guard__refuses_with_one_clear_line(
        case: str, world: World, cluster: Cluster, manifest_path: Path, tmp_path: Path) -> None:
    a = trio(world, cluster)[0]
    cfg = dict(a.config)
    env = dict(a.env)
    account = A
    expect = ""
    if case in ("chain_id", "code_hash"):
        doc = json.loads(manifest_path.read_text())
        if case == "chain_id":
            doc["chain_id"] += 1
            expect = f"the manifest is for chain {doc['chain_id']}"
        else:
            name = sorted(doc["contracts"])[0]
            doc["contracts"][name]["code_hash"] = "0x" + "ab" * 32
            expect = f"{name} at"
        bad = tmp_path / "manifest.json"
        bad.write_text(json.dumps(doc))
        cfg["manifest"] = str(bad)
    elif case == "not_member":
        account = 13
        env["ORACLE_KEY"] = "0x" + key_hex(13)
        expect = f"signer {dev_account(13).address} is not a member of committee {world.cid}"
    else:
        ks = write_keystore(tmp_path / "key.json", bytes(dev_account(A).key), PASSWORD)
        cfg.update(key_env=None, keystore=str(ks), password_env="ORACLE_PASSWORD")
        env = {"ORACLE_PASSWORD": PASSWORD}
        if case == "password":
            env["ORACLE_PASSWORD"] = "not " + PASSWORD
            expect = "wrong password for keystore"
        else:
            ks.chmod(0o644)
            expect = "readable by others (mode 644)"
    p = OracleProc(f"guard-{case}", tmp_path, cfg, env)
    line = refused(p, [key_hex(account), PASSWORD])
    assert line.startswith("pactbond oracle: refused to start: "), line
    assert expect in line, line


def test_foreign_node_on_the_configured_port__refuses_to_start(
        world: World, cluster: Cluster, tmp_path: Path) -> None:
    a = trio(world, cluster)[0]
    with Devnet(accounts=2) as other:  # another process's node, another chain
        cfg = {**a.config, "rpc_url": other.url}
        p = OracleProc("foreign", tmp_path, cfg, dict(a.env))
        line = refused(p, [key_hex(A)])
    assert f"node is chain {other.chain_id}, the manifest is for chain {world.devnet.chain_id}" \
        in line, line


def rpc_proxy(target: list[str]) -> ThreadingHTTPServer:
    """A JSON-RPC forwarder on a free loopback port, to `target[0]`: the configured port,
    whose node the test can swap under a running oracle."""

    class Forward(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                r = requests.post(target[0], data=body, timeout=10,
                                  headers={"Content-Type": "application/json"})
                status, out = r.status_code, r.content
            except requests.RequestException:
                status, out = 502, b"{}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *_: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return srv


def test_node_swapped_under_a_running_oracle__acts_on_nothing__resumes_when_back(
        world: World, cluster: Cluster, pid: int) -> None:
    target = [world.devnet.url]
    srv = rpc_proxy(target)
    try:
        a = trio(world, cluster)[0]
        a.config["rpc_url"] = f"http://127.0.0.1:{srv.server_address[1]}"
        since = int(world.keeper.w3.eth.block_number)
        a.start()
        wait_for(lambda: metric(a, "pactbond_cursor_block") >= since, timeout=15,
                 what="watching")
        # another chain that has our block numbers and more: read as ours, its blocks look
        # like a reorg of ours, then move the cursor past blocks of ours still to be watched
        head = int(world.keeper.w3.eth.block_number)
        with Devnet(accounts=2, extra_args=["--number", str(max(0, head - 100))]) as other:
            other.rpc("anvil_mine", [hex(250)])
            target[0] = other.url  # another process's node now answers on the port
            jid = deliver(world, pid, a.api, {"answer": "42"}, value=VALUE)
            wait_for(lambda: metric(a, "pactbond_failures_total", kind="node") >= 1,
                     timeout=15, what="the swap noticed")
            time.sleep(1.5)
            assert a.alive  # before: BlockNotFound ended the process with a traceback
            assert vote_row(a, jid) is None and api_vote(a, jid) is None
            assert rows(a, "SELECT COUNT(*) FROM jobs") == [(0,)]  # nothing followed
            assert cursor(a) <= int(world.keeper.w3.eth.block_number)  # nor watched
            warned = [json.loads(ln) for ln in a.log_text().splitlines()
                      if "another chain" in ln]
            assert warned and warned[0]["kind"] == "node"
            target[0] = world.devnet.url  # the right node is back
        wait_for(lambda: counted(world, jid, a.member, since), timeout=20,
                 what="vote once the right node is back")
    finally:
        srv.shutdown()
        srv.server_close()


# -- F19: the service's clock off by +-10 minutes --------------------------------------------


def packet(p: OracleProc, jid: int) -> dict[str, Any]:
    v = api_vote(p, jid)
    assert v is not None
    doc: dict[str, Any] = p.get(f"/evidence/{v['evidence_hash']}").json()
    return doc


def test_clock_off_by_ten_minutes__chain_time_decides(
        world: World, cluster: Cluster, docs: Path) -> None:
    # windows shorter than the offset: a wall-clock decision would be wrong either way
    pid = world.pact(spec_hash=schema_spec(docs), challenge_window=0, work_window=300,
                     eval_window=300)
    since = int(world.keeper.w3.eth.block_number)
    procs = trio(world, cluster)
    offsets = {A: 600, B: -600, C: 600}
    for p, i in zip(procs, (A, B, C), strict=True):
        p.start(extra_env={"PACTBOND_TEST_CLOCK_OFFSET": str(offsets[i])})
    waiting = world.buyer.open_job(pid, world.agent.address, VALUE)
    world.agent.accept(waiting)  # work deadline 300 s ahead on the chain
    jid = deliver(world, pid, procs[0].api, {"answer": "42"}, value=VALUE)
    j = wait_for(lambda: (j := world.keeper.job(jid)).state == JobState.SETTLED and j,
                 timeout=30, what="settled")
    assert len(j.round0) == 3 and len(settlements(world, jid, since)) == 1
    for p, i in zip(procs, (A, B, C), strict=True):
        times = packet(p, jid)["times"]
        # the hook did shift the clock; the decisions used the chain's time
        assert abs(times["started"] - (time.time() + offsets[i])) < 120, times
        assert times["chain_time"] <= j.deadline

    # nothing expired early: the +600 s clocks are past the work deadline, the chain is not
    time.sleep(1.5)
    assert world.keeper.job(waiting).state == JobState.ACCEPTED
    for p in procs:
        assert intent_status(p, waiting, "expire") is None
    # once the chain passes the deadline, a keeper (whatever its clock) expires it
    world.warp(world.keeper.job(waiting).deadline - world.keeper.now() + 1)
    wait_for(lambda: world.keeper.job(waiting).state == JobState.EXPIRED_NO_DELIVERY,
             timeout=20, what="expired on chain time")


# -- secrets: every log line JSON, no key, no password ----------------------------------------


def test_every_log_line_is_json__no_key_no_password(
        world: World, cluster: Cluster, pid: int, tmp_path: Path) -> None:
    a = trio(world, cluster)[0]
    ks = write_keystore(tmp_path / "keystore.json", bytes(dev_account(A).key), PASSWORD)
    assert ks.stat().st_mode & 0o777 == 0o600
    a.config.update(key_env=None, keystore=str(ks), password_env="ORACLE_PASSWORD",
                    log_level="DEBUG")
    a.env = {"ORACLE_PASSWORD": PASSWORD}
    since = int(world.keeper.w3.eth.block_number)
    a.start()
    jid = deliver(world, pid, a.api, {"answer": "42"}, value=VALUE)
    wait_for(lambda: counted(world, jid, a.member, since), timeout=20, what="vote counted")
    a.get("/metrics")
    a.get("/nope")
    a.stop()
    n = assert_clean_log(a, [key_hex(A), PASSWORD, PASSWORD.replace(" ", "")])
    assert n >= 8
    levels = Counter(json.loads(ln)["level"] for ln in a.log_text().splitlines())
    assert levels["debug"] >= 1 and levels["info"] >= 5

"""The oracle loop: watch → fetch → evaluate → evidence → sign (persisted) → serve → post → track
→ keeper duties.

One `tick(head)` does one pass; `run()` repeats it until SIGTERM. Every decision reads the chain
(the job's state, the head block's timestamp), never the local clock, so a clock that is off
cannot expire anything wrongly. Every step persists before it acts, and re-running a step after
a crash finds its stored result: the evaluation, then the signed vote, then the signed
transaction. A job delivered a hundred times is one evaluation, one vote and at most one
transaction (the store's uniqueness rules).

`PACTBOND_TEST_KILL_AT=<point>` (tests only) SIGKILLs the process at one of KILL_POINTS;
`PACTBOND_TEST_CLOCK_OFFSET=<seconds>` (tests only) shifts this process's wall clock, which
only evidence timestamps read.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from eth_utils.address import to_checksum_address
from web3.exceptions import BlockNotFound, Web3Exception

from pactbond import eip712
from pactbond.calls import Call
from pactbond.client import (
    NO_EVIDENCE,
    REVERTS,
    Job,
    JobLogsError,
    JobState,
    Pactbond,
    Roster,
    revert_reason,
    settles_now,
)
from pactbond.errors import ConnectionMismatchError, NodeError, PactbondError
from pactbond.models import PactTerms, Vote
from pactbond.oracle import batching, evidence
from pactbond.oracle.config import OracleSettings
from pactbond.oracle.evaluators.base import (
    Check,
    Context,
    Evaluator,
    EvaluatorError,
    Outcome,
)
from pactbond.oracle.fetch import Fetcher
from pactbond.oracle.metrics import Metrics
from pactbond.oracle.spec import Library, Spec, SpecError, content_hash, hex32
from pactbond.oracle.store import ConflictingVoteError, Intent, Store, StoreError
from pactbond.oracle.txs import TxManager, TxPolicy
from pactbond.votes import MAX_BATCH_SETTLES, MAX_CALL_VOTES, SignedVote

log = logging.getLogger("pactbond.oracle")

VOTE_RETRY_S = 30  # a closed vote intent the chain still owes is reopened after this long
KILL_POINTS = ("evaluated", "signed", "peers_fetched", "tx_persisted", "broadcast", "receipt")
KILL_ENV = "PACTBOND_TEST_KILL_AT"
CLOCK_ENV = "PACTBOND_TEST_CLOCK_OFFSET"
WATCHED = ["JobOpened", "JobSubmitted", "JobChallenged"]
# reverts that mean a vote needs no posting any more (counted, round over, job moved on)
_VOTE_DONE = ("vote: duplicate vote", "vote: round closed", "vote: job not in evaluation",
              "vote: job not in appeal", "vote: deadline passed")
_KEEPER_DONE = ("escrow: no verdict", "escrow: not expirable", "escrow: not challenged")
# the fields the call carried are no longer the job's (ADR 011): it moved between our read and
# the call (a peer's call closed round 0, a transition, a read behind the head). A race, not
# the intent's failure: the next tick reads the job again and builds the call anew
STALE = "escrow: stale job fields"
TOO_MANY_SETTLE = "vote: batch settles too many jobs"
SETTLES_SPLIT = "batch settles more jobs than one call may: split"
# calls that take a counted round-0 vote as Feedback's evidence (ADR 011)
_WITH_EVIDENCE = ("finalize", "resolve")


class LocalFaultError(PactbondError, RuntimeError):
    """This oracle's own trouble while evaluating (disk, memory): the vote is withheld and the
    evaluation retried, never turned into a score."""


class StartupError(PactbondError, RuntimeError):
    """The service refuses to start (wrong chain, code, signer, keystore...)."""


def kill_point(name: str) -> None:
    """Test hook: die at once, as from a power cut, at the named point."""
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _clock_offset() -> float:
    try:
        return float(os.environ.get(CLOCK_ENV) or 0)
    except ValueError:
        return 0.0


_OFFSET = _clock_offset()


def wall_clock() -> float:
    """The local wall clock, for timestamps that are only recorded (evidence times, row
    times): decisions read the chain's time instead. Tests shift it with CLOCK_ENV."""
    return time.time() + _OFFSET


@dataclass
class Duty:
    """What this oracle owes a job now (pure decision from the job, the chain time, the terms
    and the oracle's place in the rosters)."""

    vote_round: int | None = None  # evaluate/sign/post for this round
    keeper: str | None = None  # "finalize" | "expire" | "resolve"
    done: bool = False  # nothing more, ever


def duty(j: Job, t: PactTerms, now: int, my_index0: int | None, my_index1: int | None,
         appeal_member: bool) -> Duty:
    """Decide from chain facts only: `now` is the chain's time."""
    d = Duty()
    s = j.state
    if s.terminal:
        d.done = True
        return d
    if s in (JobState.SUBMITTED, JobState.VERDICT):
        round_open = j.round0_close == j.deadline and now <= j.deadline
        reserved = my_index0 is not None and j.reserved >> my_index0 & 1
        if round_open and reserved and my_index0 not in j.round0:
            d.vote_round = 0
        if s == JobState.SUBMITTED and now > j.deadline:
            d.keeper = "expire"
        if s == JobState.VERDICT and now > j.round0_close + t.challenge_window:
            d.keeper = "finalize"
    elif s == JobState.ACCEPTED and now > j.deadline:
        d.keeper = "expire"
    elif s == JobState.CHALLENGED:
        if appeal_member and my_index1 is not None and my_index1 not in j.round1 \
                and now <= j.deadline:
            d.vote_round = 1
        if now > j.deadline:
            d.keeper = "resolve"
    return d


class Oracle:
    """One committee member's service."""

    def __init__(self, cfg: OracleSettings, pb: Pactbond, store: Store, library: Library,
                 plugin: Callable[[str], Evaluator], metrics: Metrics | None = None) -> None:
        self.cfg = cfg
        self.pb = pb
        self.me = to_checksum_address(pb.address)
        self.store = store
        self.library = library
        self.plugin = plugin
        self.metrics = metrics or Metrics()
        self.txm = TxManager(pb.w3, pb._sender(), pb.chain_id, store, self.metrics, TxPolicy(
            confirmations=cfg.confirmations, max_in_flight=cfg.max_in_flight,
            bump_after_blocks=cfg.bump_after_blocks, bump_percent=cfg.bump_percent,
            max_fee_cap_wei=cfg.max_fee_cap_wei, min_balance_wei=cfg.min_balance_wei,
            tx_fee_cap_wei=cfg.tx_fee_cap_wei,
        ), kill_point)
        self.stopping = threading.Event()
        self._rosters: dict[int, Roster] = {}
        self._specs: dict[bytes, Spec] = {}
        self._conflicts: set[int] = set()  # jobs whose conflicting vote was alerted
        # when each peer vote was first seen: a peer's vote is posted for it only once the peer
        # has had `peer_grace_blocks` to post it itself (posting it at once races the peer)
        self._peer_seen: dict[tuple[int, int, str], int] = {}
        self._head = 0
        self._secret: bytes | None = None
        self._genesis: bytes | None = None  # the chain this service started on
        self._healthy_at = 0.0
        self._last_error = "starting"
        self._pruned = 0  # store time of the last upload pruning
        self._session = requests.Session()
        self._session.trust_env = False
        self.fetcher = Fetcher(cfg.fetch_timeout, cfg.fetch_total_s)  # bounded in time

    # -- start-up --------------------------------------------------------------------------
    def check_membership(self) -> None:
        """Refuse to start unless the signer is a member of each configured committee's
        current version."""
        for cid in self.cfg.committees:
            try:
                vid = self.pb.current_version(cid)
                r = self.pb.roster(vid)
            except PactbondError as e:
                raise StartupError(f"committee {cid}: {e}") from None
            if self.me not in r.members:
                raise StartupError(
                    f"signer {self.me} is not a member of committee {cid} (version {vid}): "
                    "wrong key or wrong committee in the config"
                )
        self.check_node()

    def check_node(self) -> None:
        """The node still serves the chain the service started on (its genesis block). The
        start-up guard checks the chain id and code once; a node replaced under a running
        service (another chain on the configured port) would otherwise feed it foreign jobs,
        and the never-sign-twice rule would then block the real job's vote."""
        try:
            genesis = bytes(self.pb.w3.eth.get_block(0)["hash"])
        except BlockNotFound:
            genesis = b""  # a chain whose first block is not 0
        if self._genesis is None:
            self._genesis = genesis
        elif genesis != self._genesis:
            raise ConnectionMismatchError(
                f"the node now serves another chain (genesis 0x{genesis.hex()[:12]}.., was "
                f"0x{self._genesis.hex()[:12]}..): doing nothing until the right node is back")

    # -- reads -----------------------------------------------------------------------------
    def roster(self, vid: int) -> Roster:
        # members and thresholds of a version never change; the active set may (revocation),
        # so the cache is refreshed each tick
        if vid not in self._rosters:
            self._rosters[vid] = self.pb.roster(vid)
        return self._rosters[vid]

    def spec(self, t: PactTerms) -> Spec:
        if t.spec_hash not in self._specs:
            s = self.library.spec(t.spec_hash)
            s.check_terms(t)
            p = self.plugin(s.evaluator.name)
            if p.version != s.evaluator.version:
                raise SpecError(f"spec wants evaluator {s.evaluator.name} "
                                f"{s.evaluator.version}, this oracle runs {p.version}")
            p.check_params(s.params)
            self._specs[t.spec_hash] = s
        return self._specs[t.spec_hash]

    def member_secret(self) -> bytes:
        """A secret only this member can derive, the same after every restart: the hash of its
        (deterministic, RFC 6979) signature over a fixed digest. Hidden reference sets' salts
        come from it, so nobody else can test guesses against the evidence's commitments."""
        if self._secret is None:
            tag = content_hash(b"pactbond hidden-set salt v1" + self.pb.chain_id.to_bytes(32, "big")
                               + bytes.fromhex(self.pb.escrow.address[2:]))
            try:
                self._secret = content_hash(self.pb._sender().sign_digest(tag))
            except PactbondError as e:
                raise EvaluatorError(f"cannot derive the member secret: {e}") from None
        return self._secret

    def ours(self, t: PactTerms) -> bool:
        return t.committee_id in self.cfg.committees or \
            t.appeal_committee_id in self.cfg.committees

    # -- health ----------------------------------------------------------------------------
    def ready(self) -> tuple[bool, str]:
        if self.stopping.is_set():
            return False, "stopping"
        if time.monotonic() - self._healthy_at > max(10.0, 20 * self.cfg.poll_interval):
            return False, self._last_error
        if self.txm.low_balance:
            return False, "signer balance too low to send"
        return True, ""

    def revealable(self, job_id: int) -> bool:
        """May the hidden reveal of a job's evidence be published? Only once the job has ended
        (settled or expired) at confirmation depth: not at the round-0 verdict, while a
        challenge or an appeal may still evaluate against the same set. Fails closed."""
        try:
            safe = max(self._head - self.cfg.confirmations, 0)
            return self.pb.job(job_id, block=safe).state.terminal
        except Exception:
            return False

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        """Tick until stopped; node or database trouble backs off (at most 5 s) and retries."""
        pause = self.cfg.poll_interval
        while not self.stopping.is_set():
            try:
                self.tick()
                self._healthy_at = time.monotonic()
                pause = self.cfg.poll_interval
            except StoreError as e:
                self._fail("store", f"database: {e}")
                pause = min(pause * 2, 5.0)
            except (PactbondError, requests.RequestException, OSError, ValueError,
                    Web3Exception) as e:
                # Web3Exception: an RPC error reply (BlockNotFound...) used to end the process
                # with a traceback; it is node trouble like any other
                self._fail("node", f"{type(e).__name__}: {str(e)[:200]}")
                pause = min(pause * 2, 5.0)
            except REVERTS as e:  # a read the node refused mid-tick
                self._fail("node", f"{type(e).__name__}: {str(e)[:200]}")
                pause = min(pause * 2, 5.0)
            self.stopping.wait(pause)

    def _fail(self, kind: str, msg: str) -> None:
        self._last_error = msg
        self.metrics.failures.labels(kind).inc()
        log.warning("tick failed, backing off", extra={"fields": {"kind": kind, "error": msg}})

    def tick(self) -> None:
        self.check_node()
        head = self._head = int(self.pb.w3.eth.block_number)
        self.metrics.head.set(head)
        self._rosters.clear()
        self.watch(head)
        now = self.pb.now()
        jobs = self.store.open_jobs()
        self.metrics.queue_depth.set(len(jobs))
        for job_id, _pact_id, _uri in jobs:
            if self.stopping.is_set():
                return
            try:
                self.advance(job_id, now)
            except JobLogsError as e:
                self._logs_failed(job_id, e)
            except (StoreError, NodeError, Web3Exception, requests.RequestException, OSError):
                raise  # the database or the node: the whole tick backs off
            except Exception as e:  # one job's trouble must not stop the others
                # (an evaluator retrying, a refused read): it used to end the tick before the
                # votes already signed were posted and the transactions in flight were tracked
                self.metrics.failures.labels("job").inc()
                log.warning("job skipped this tick", extra={"fields": {
                    "job": job_id, "error": f"{type(e).__name__}: {str(e)[:200]}"}})
        self.post_intents(head)
        self.txm.tick(head, self.on_final)
        self.prune_uploads()

    def _logs_failed(self, job_id: int, e: JobLogsError) -> None:
        """One job's logs do not rebuild its stored word (ADR 011: a reorg while they were
        read, a capped log query): that job waits for the next tick; the others, the posting
        and the tracking of transactions in flight go on."""
        self.metrics.failures.labels("job_logs").inc()
        log.warning("job fields not known this tick", extra={"fields": {
            "job": job_id, "error": str(e)[:200]}})

    def prune_uploads(self, every: int = 600) -> None:
        """Every `every` seconds, delete uploaded deliverables older than upload_ttl_s that no
        vote names (the API's quota counts only the younger ones)."""
        now = self.store.now()
        if now - self._pruned < every:
            return
        self._pruned = now
        n = self.store.prune_uploads(now - self.cfg.upload_ttl_s)
        if n:
            log.info("old uploads deleted", extra={"fields": {"deliverables": n}})

    # -- watching --------------------------------------------------------------------------
    def watch(self, head: int) -> None:
        """Follow new jobs of our committees from confirmed blocks, from the last block seen;
        a watched block whose hash changed (a reorg) is re-read."""
        safe = head - self.cfg.confirmations
        cursor = self.store.cursor()
        if cursor is None:
            start = self.cfg.start_block if self.cfg.start_block is not None \
                else self.pb.manifest.block
            cursor = start - 1
        cursor = self._unwind(cursor)
        if safe <= cursor:
            return
        last = min(safe, cursor + self.cfg.log_chunk)
        for ev in self.pb.events(cursor + 1, last, names=WATCHED):
            jid = int(ev.job_id)  # type: ignore[attr-defined]
            if ev.name == "JobOpened":
                t = self.pb.pact(int(ev.pact_id))  # type: ignore[attr-defined]
                if self.ours(t) and self.store.follow(jid, int(ev.pact_id),  # type: ignore[attr-defined]
                                                      ev.block_number):
                    self.metrics.jobs_seen.inc()
                    log.info("job followed", extra={"fields": {"job": jid}})
            elif ev.name == "JobSubmitted":
                uri = str(ev.uri)  # type: ignore[attr-defined]
                if uri:
                    self.store.set_uri(jid, uri)
            elif ev.name == "JobChallenged":
                self.store.reopen_job(jid)
        blk = self.pb.w3.eth.get_block(last)
        self.store.advance(last, bytes(blk["hash"]), keep=self.cfg.reorg_window)
        self.metrics.cursor.set(last)

    def _unwind(self, cursor: int) -> int:
        """Walk back over blocks whose stored hash no longer matches the chain."""
        start = cursor
        while cursor >= 0:
            stored = self.store.block_hash(cursor)
            if stored is None:
                break
            if bytes(self.pb.w3.eth.get_block(cursor)["hash"]) == stored:
                break
            cursor -= 1
            if start - cursor > self.cfg.reorg_window:
                break
        if cursor != start:
            log.warning("reorg: re-reading blocks", extra={"fields": {"from": cursor + 1,
                                                                        "to": start}})
            self.store.rewind(cursor)
        return cursor

    # -- one job ---------------------------------------------------------------------------
    def advance(self, job_id: int, now: int) -> None:
        try:
            j = self.pb.job(job_id)
            t = self.pb.pact(j.pact_id)
            r0 = self.roster(j.committee_version)
            i0 = r0.index(self.me)
            i1: int | None = None
            appeal_member = False
            if j.state == JobState.CHALLENGED:
                r1 = self.roster(j.appeal_version)
                i1 = r1.index(self.me)
                appeal_member = self.me in r1.accepted and self.me in r1.active
            d = duty(j, t, now, i0, i1, appeal_member)
            if d.done:
                # ended only once the terminal state is as deep as the confirmations: a reorg
                # that undoes someone else's settlement must find the job still followed
                safe = max(self._head - self.cfg.confirmations, 0)
                try:
                    final = self.pb.job(job_id, block=safe).state.terminal
                except (PactbondError, Web3Exception, ValueError, OSError):
                    final = False  # no state there (a pruning or lagging node): next tick
                if not final:
                    return
                self.store.finish_job(job_id)
                # forget its in-memory marks: a long-running service would grow by every job
                self._conflicts.discard(job_id)
                self._peer_seen = {k: v for k, v in self._peer_seen.items() if k[0] != job_id}
                self.metrics.settled.inc()
                log.info("job ended", extra={"fields": {"job": job_id, "state": j.state.name}})
                return
            if d.vote_round is not None:
                self.vote(j, t, d.vote_round, now)
            elif self.store.vote(job_id, (j.state == JobState.CHALLENGED and 1) or 0) is not None:
                self._note_counted(j)
            if d.keeper and self.cfg.keeper:
                it = self.store.intend(d.keeper, job_id)
                if it.status == "done" and it.note != "confirmed":
                    # done because someone else did it first (or our call reverted), yet the
                    # chain says it is due: a reorg undid theirs
                    self.store.set_intent(it.id, "new", "due again")
        except ConflictingVoteError as e:
            # once per job and process: the job is retried every tick and would flood the log
            if job_id not in self._conflicts:
                self._conflicts.add(job_id)
                self.txm.alert("conflict", f"job {job_id}: {e}")
        except (SpecError, EvaluatorError, LocalFaultError) as e:
            # an evaluator fault was counted where it happened; a spec that does not load, or
            # a local fault, is this oracle's own: it withholds its vote and retries
            n = self.store.note_failure(job_id, str(e)) if isinstance(e, SpecError) else -1
            self.metrics.failures.labels("evaluate").inc()
            log.warning("job failed", extra={"fields": {"job": job_id, "attempt": n,
                                                         "error": str(e)[:200]}})

    def _note_counted(self, j: Job) -> None:
        for rnd, counted in ((0, j.round0), (1, j.round1)):
            v = self.store.vote(j.id, rnd)
            if v is None or v.counted:
                continue
            r = self.roster(j.appeal_version if rnd else j.committee_version)
            i = r.index(self.me)
            if i is not None and i in counted:
                self.store.mark_counted(j.id, rnd)
                self.metrics.counted.inc()

    def vote(self, j: Job, t: PactTerms, round_: int, now: int) -> None:
        """Evaluate (once), sign (once), then intend to post. A stored vote is posted only
        while it is still the vote of the stored evaluation and the job as the chain has it
        now; otherwise the store refuses (ConflictingVoteError) and nothing is signed or
        posted."""
        stored = self.store.vote(j.id, round_)
        ev = self.store.evaluation(j.id, round_)
        if ev is None and stored is None:
            ev = self.evaluate(j, t, round_, now)
            if ev is None:
                return  # waiting for the deliverable
        if ev is not None:
            score, evidence_hash, _ = ev
            facts = (score, evidence_hash, j.deliverable_hash, t.spec_hash, j.deadline, self.me)
            # before, a stored vote skipped this check: a vote that no longer matched its
            # evaluation (or the job) was posted unchecked and the conflict path never ran
            if stored is None or facts != (stored.score, stored.evidence_hash,
                                           stored.deliverable_hash, stored.spec_hash,
                                           stored.deadline, stored.member):
                v = Vote(job_id=j.id, deliverable_hash=j.deliverable_hash,
                         spec_hash=t.spec_hash, score_bps=score, evidence_hash=evidence_hash,
                         round=round_, deadline=j.deadline)
                typed = eip712.typed_data(v, self.pb.chain_id, self.pb.escrow.address)
                wallet = self.pb._sender()
                self.store.sign_vote(j.id, round_, score, evidence_hash, j.deliverable_hash,
                                     t.spec_hash, j.deadline, self.me,
                                     lambda: wallet.sign_typed_data(typed))
                if stored is None:
                    self.metrics.signed.inc()
                    log.info("vote signed", extra={"fields": {"job": j.id, "round": round_,
                                                              "score": score}})
                    kill_point("signed")
        self.store.intend("vote", j.id, round_)
        # the chain says our vote is owed (uncounted, round open), yet a read that was not final
        # closed the intent (a reorg undid our counted vote, a lagging backend refused it, a
        # stake top-up since): post it again
        if self.store.revive("vote", j.id, round_, VOTE_RETRY_S, "owed again"):
            log.info("vote owed again", extra={"fields": {"job": j.id, "round": round_}})

    def evaluate(self, j: Job, t: PactTerms, round_: int,
                 now: int) -> tuple[int, bytes, bytes | None] | None:
        started = int(wall_clock())
        spec = self.spec(t)
        data, why = self.fetch(j, spec.deliverable.max_bytes)
        plugin: Evaluator | None = None
        if data is None:
            if now < j.deadline - self.cfg.margin:
                return None
            outcome = Outcome(score_bps=0, error=f"deliverable unavailable: {why}",
                              checks=[Check(name="deliverable", passed=False, detail=why)])
        else:
            plugin = self.plugin(spec.evaluator.name)
            ctx = Context(deliverable=data, params=spec.params, load=self.library.get,
                          seed=content_hash(self.member_secret() + j.id.to_bytes(32, "big")
                                            + spec.hash + round_.to_bytes(1, "big")),
                          job_id=j.id,
                          scratch_root=str(self.cfg.scratch_dir) if self.cfg.scratch_dir
                          else None)
            try:
                try:
                    outcome = plugin.evaluate(ctx)
                except EvaluatorError:
                    raise
                except (OSError, MemoryError) as e:
                    # this machine's trouble (disk full, no file handles): never a score-0 vote
                    # that could not be taken back; withheld and retried
                    raise LocalFaultError(f"{type(e).__name__}: {str(e)[:200]}") from None
                except Exception as e:  # a plugin's bug is its failure, not ours
                    raise EvaluatorError(f"{type(e).__name__}: {str(e)[:200]}") from None
            except EvaluatorError as e:
                attempts = self.store.note_failure(j.id, str(e))
                if attempts < self.cfg.evaluate_retries and now < j.deadline - self.cfg.margin:
                    raise
                outcome = Outcome(score_bps=0, error=f"evaluator failed: {e}")
        packet, h, reveal, reveal_hash = evidence.build(
            job_id=j.id, round_=round_, chain_id=self.pb.chain_id,
            escrow=self.pb.escrow.address, member=self.me,
            deliverable_hash=j.deliverable_hash, deliverable_size=len(data) if data else None,
            spec=spec, plugin=plugin, outcome=outcome, chain_time=now, started=started,
            finished=int(wall_clock()))
        score, h = self.store.save_evaluation(j.id, round_, outcome.score_bps, h, packet,
                                              reveal, reveal_hash)
        self.metrics.evaluated.inc()
        log.info("evaluated", extra={"fields": {"job": j.id, "round": round_, "score": score,
                                                "evidence": hex32(h)}})
        kill_point("evaluated")
        return score, h, reveal_hash

    def fetch(self, j: Job, limit: int) -> tuple[bytes | None, str]:
        """The deliverable's bytes: uploaded here, else the submission's URL, else a peer's
        copy; only bytes that hash to the on-chain deliverable hash count."""
        limit = min(limit, self.cfg.max_deliverable_bytes)
        h = j.deliverable_hash
        data = self.store.blob(h, "deliverable")
        if data is not None:
            return (data, "") if len(data) <= limit else (None, f"over {limit} bytes")
        # (what the evidence may say of a source, its URL): a peer is named by its member
        # address, never by its URL (private, perhaps internal); the submission URL is public
        sources: list[tuple[str, str]] = []
        uri = self.store.job_uri(j.id)
        if uri.startswith(("http://", "https://")):
            sources.append((uri, uri))
        sources += [(f"peer {m}", f"{u}/deliverables/{hex32(h)}")
                    for m, u in self.cfg.peers.items() if m != self.me]
        why = "not uploaded and no source has it"
        for name, url in sources:
            res = self.fetcher.get(url, limit)
            if res is None:
                why = f"{name}: still downloading"
                continue
            if res.error is not None:
                why = f"{name}: {res.error}"
                continue
            got = res.data  # at most `limit` bytes: downloads are keyed by URL and limit
            if got is None:
                continue
            if content_hash(got) != h:
                why = f"{name}: bytes do not match the deliverable hash"
                continue
            self.store.put_blob(h, "deliverable", got)
            return got, ""
        return None, why

    # -- posting ---------------------------------------------------------------------------
    def post_intents(self, head: int) -> None:
        room = self.txm.room()
        new = self.store.intents("new")
        for it in new:
            if it.kind == "batch":  # never sent, or its transaction was superseded
                self._release_batch(it, "batch not sent: votes go back to the queue")
        if n := self.store.release_orphans():
            log.warning("intents without a live transaction re-examined",
                        extra={"fields": {"intents": n}})
            new = self.store.intents("new")
        new = [it for it in new if it.kind != "batch"]
        if not new:
            return
        # a transaction asking more gas than a block holds is refused by the node at every
        # broadcast: no gas limit goes above the block's (a batch past it is split instead)
        block_gas = int(self.pb.w3.eth.get_block("latest")["gasLimit"])
        batched: set[int] = set()
        votes = [it for it in new if it.kind == "vote"]
        if len(votes) >= batching.MIN_BATCH and room > 0:
            for group in batching.groups(self._ready_votes(votes)):
                if room <= 0 or self.stopping.is_set():
                    break
                for sent in self._send_batch(group, room, block_gas):
                    room -= 1
                    batched |= {r.intent_id for r in sent}
                if self.txm.low_balance:
                    break  # the signer cannot pay: no more batches signed and dropped this tick
        for it in new:
            if room <= 0 or self.stopping.is_set():
                return
            if it.id in batched:
                continue
            try:
                call = self.build(it)
            except JobLogsError as e:
                self._logs_failed(it.job_id, e)
                continue
            if call is None:
                continue
            c, gas = call
            if self.txm.send(it, c, min(gas, block_gas)) is None:
                # the signer cannot pay: the rest waits for the top-up too, rather than every
                # queued call being simulated each tick (a cheaper call behind it may wait a
                # tick it could have been paid for: calls here cost within ~2x of each other)
                break
            room -= 1

    def _ready_votes(self, votes: list[Intent]) -> list[batching.Ready]:
        """Vote intents whose own stored vote would count if posted now."""
        out: list[batching.Ready] = []
        for it in votes:
            try:
                j = self.pb.job(it.job_id)
            except JobLogsError as e:
                self._logs_failed(it.job_id, e)
                continue
            mine = self.store.vote(it.job_id, it.round)
            if mine is None:
                continue
            r = self.roster(j.appeal_version if it.round else j.committee_version)
            i = r.index(self.me)
            counted = j.round1 if it.round else j.round0
            open_ = (j.state == JobState.CHALLENGED) if it.round else (
                j.state in (JobState.SUBMITTED, JobState.VERDICT)
                and j.round0_close == j.deadline)
            if i is not None and i not in counted and open_:
                out.append(batching.Ready(it.id, mine, j, self.pb.pact(j.pact_id)))
        return out

    def _send_batch(self, group: list[batching.Ready], room: int,
                    block_gas: int) -> list[list[batching.Ready]]:
        """Post a group of own votes in settle_batch calls, at most `room` of them: one if it
        settles at most MAX_BATCH_SETTLES jobs and its gas stays within max_batch_gas and the
        block's gas limit, else its halves (recursively; a part under MIN_BATCH is left to
        single posting). Returns the parts sent; votes not sent stay queued."""
        if room <= 0 or len(group) < batching.MIN_BATCH:
            return []
        if self._settling(group) > MAX_BATCH_SETTLES:
            return self._split(group, room, block_gas, None, SETTLES_SPLIT, {"foreseen": True})
        bi = self.store.intend_batch(group[0].vote.round, [r.intent_id for r in group])
        wallet = self.pb._sender()
        call = batching.batch_call(self.pb, self.store, self.me, group, wallet.sign_typed_data)
        gas: int | None
        try:
            gas = int(self.pb.w3.eth.estimate_gas({"from": self.me, "to": call.to,
                                                   "data": call.data}))
        except REVERTS as e:
            reason = revert_reason(e) or ""
            if reason == TOO_MANY_SETTLE:
                # more of its jobs settle than this tick's read foresaw (peers' votes landed)
                return self._split(group, room, block_gas, bi, SETTLES_SPLIT, {"foreseen": False})
            if reason not in ("", "execution reverted"):
                if reason.startswith(STALE):  # a job moved since this tick's read
                    self.metrics.stale.labels("batch").inc()
                # its votes go back to the queue and are posted alone (each job read again)
                self._release_batch(bi, f"batch refused: {reason}")
                return []
            # no reason: our contracts give one for every refusal, so this is the node running
            # out of gas at its cap (anvil answers an over-limit estimate so); split it
            gas = None
        except (Web3Exception, ValueError) as e:
            if not any(w in str(e).lower() for w in ("gas", "allowance")):
                self._release_batch(bi, f"batch not estimated: {str(e)[:200]}")
                return []  # a node fault, not the batch's size: the tick goes on with singles
            gas = None  # more gas than the node's block limit
        bound = min(self.cfg.max_batch_gas, block_gas)
        if gas is None or gas * 6 // 5 > bound:
            return self._split(group, room, block_gas, bi, "batch over the gas bound: split",
                               {"gas": gas, "bound": bound})
        if self.txm.send(bi, call, gas * 6 // 5) is None:
            self._release_batch(bi, "batch waits: signer balance")
            return []
        log.info("votes batched", extra={"fields": {"jobs": len(group),
                                                    "round": group[0].vote.round}})
        return [group]

    def _split(self, group: list[batching.Ready], room: int, block_gas: int,
               bi: Intent | None, why: str, fields: dict[str, Any] | None,
               ) -> list[list[batching.Ready]]:
        """Send a group's halves as batches of their own (see _send_batch)."""
        if bi is not None:
            self._release_batch(bi, why)
        log.info(why, extra={"fields": {"jobs": len(group), **(fields or {})}})
        half = max(len(group) // 2, 1)
        first = self._send_batch(group[:half], room, block_gas)
        return first + self._send_batch(group[half:], room - len(first), block_gas)

    def _settling(self, group: list[batching.Ready]) -> int:
        """How many of the group's jobs its votes would settle (round 0 closed with a verdict
        under a zero challenge window), as this tick read them."""
        n = 0
        for r in group:
            if r.vote.round == 0:
                roster = self.roster(r.job.committee_version)
                i = roster.index(self.me)
                n += i is not None and settles_now(r.job, roster, r.terms, {(r.job.id, i)})
        return n

    def _release_batch(self, bi: Intent, note: str) -> None:
        for m in self.store.batch_members(bi.id):
            if m.status == "sending":
                self.store.set_intent(m.id, "new", note)
        # a batch that never had a transaction leaves no row: one is tried every tick while
        # the signer is short of funds, and the tables grew by a batch per tick
        if not self.store.drop_unsent_batch(bi.id):
            self.store.set_intent(bi.id, "done", note)

    def build(self, it: Intent) -> tuple[Call, int] | None:
        """The call an intent needs now, simulated; None when it needs none (and it is then
        marked done) or cannot be sent yet."""
        j = self.pb.job(it.job_id)
        t = self.pb.pact(j.pact_id)
        if it.kind == "vote":
            call = self._vote_call(j, t, it.round)
        else:
            call = self._keeper_call(it.kind, j, t)
        if call is None:
            self.store.set_intent(it.id, "done", "vote counted or round over")
            return None
        return self._simulated(it, j, t, call)

    def _simulated(self, it: Intent, j: Job, t: PactTerms, call: Call,
                   evidence: bool = True) -> tuple[Call, int] | None:
        """`call` with its gas limit; None when the node refuses it, the intent then done,
        failed or left for the next tick by the refusal's reason."""
        try:
            gas = int(self.pb.w3.eth.estimate_gas({"from": self.me, "to": call.to,
                                                   "data": call.data}))
        except REVERTS as e:
            reason = revert_reason(e) or ""
            if reason.startswith(STALE):
                # the job moved since our read: the next tick reads it again and rebuilds the
                # call (marking the intent failed would leave a vote still owed unposted)
                self.metrics.stale.labels(it.kind).inc()
                log.info("job moved meanwhile: call rebuilt next tick",
                         extra={"fields": {"intent": it.kind, "job": it.job_id}})
                return None
            if evidence and it.kind in _WITH_EVIDENCE and reason.startswith(
                    "escrow: evidence vote"):
                # the re-proved vote is refused (our reading of it is wrong): settle without
                # Feedback evidence rather than never (the zero member is always accepted)
                self.txm.alert("evidence", f"job {it.job_id}: {reason}: {it.kind} without it")
                return self._simulated(it, j, t, self._keeper_call(it.kind, j, t, False), False)
            if it.kind == "vote" and reason.startswith("vote: duplicate vote") \
                    and not self._own_vote_counted(it):
                # a peer's vote in the batch was counted meanwhile (someone else posted it),
                # not ours: before, this marked our intent done and our vote was never posted;
                # the next tick builds the call again, without the counted peer
                return None
            if (it.kind == "vote" and reason.startswith(_VOTE_DONE)) or reason.startswith(
                    _KEEPER_DONE) or "not expirable" in reason:
                self.store.set_intent(it.id, "done", reason)
                return None
            if it.kind != "vote" and reason.startswith(("escrow: challenge window open",
                                                         "escrow: appeal open",
                                                         "escrow: work window open",
                                                         "escrow: evaluation window open")):
                return None  # not due yet at the node's time: try again next tick
            self.store.set_intent(it.id, "failed", reason or str(e)[:200])
            self.metrics.failures.labels("simulate").inc()
            log.warning("simulation refused", extra={"fields": {"intent": it.kind,
                                                                "job": it.job_id,
                                                                "reason": reason}})
            return None
        return call, gas * 6 // 5

    def _keeper_call(self, kind: str, j: Job, t: PactTerms, evidence: bool = True) -> Call:
        """A keeper's call: (job_id, terms, fields), and for finalize and resolve the counted
        round-0 vote whose evidence Feedback carries (the client re-proves it from the chain;
        the zero member when there is none, or with `evidence` False)."""
        args: list[Any] = [j.id, t.as_tuple(), j.fields.as_tuple()]
        if kind in _WITH_EVIDENCE:
            args.append(self.pb.evidence(j.id) if evidence else NO_EVIDENCE)
        return self.pb._esc.call(kind, *args)

    def _own_vote_counted(self, it: Intent) -> bool:
        """Is this oracle's vote counted on the chain now? (Read from the job, not from the
        store's `counted` flag: a reorg can undo a vote the flag remembers.)"""
        j = self.pb.job(it.job_id)
        self._note_counted(j)
        r = self.roster(j.appeal_version if it.round else j.committee_version)
        i = r.index(self.me)
        return i is not None and i in (j.round1 if it.round else j.round0)

    def _vote_call(self, j: Job, t: PactTerms, round_: int) -> Call | None:
        mine = self.store.vote(j.id, round_)
        if mine is None:
            return None
        r = self.roster(j.appeal_version if round_ else j.committee_version)
        counted = j.round1 if round_ else j.round0
        i = r.index(self.me)
        if i is None or i in counted:
            if i is not None:
                self.store.mark_counted(j.id, round_)
            return None
        if round_ == 0 and (j.round0_close != j.deadline or j.state not in
                            (JobState.SUBMITTED, JobState.VERDICT)):
            return None
        if round_ == 1 and j.state != JobState.CHALLENGED:
            return None
        votes = [(self.me, mine.score, mine.evidence_hash, mine.deadline, mine.signature)]
        # the escrow takes at most MAX_CALL_VOTES a call: the peers' votes beyond go in their
        # own members' calls (or a later tick's)
        votes += self.peer_votes(j, t, round_, r, counted)[: MAX_CALL_VOTES - 1]
        kill_point("peers_fetched")
        fn = "appeal" if round_ else "settle"
        fields = j.fields.as_tuple()
        call = self.pb._esc.call(fn, j.id, t.as_tuple(), fields, votes)
        if len(votes) > 1:
            try:
                self.pb.w3.eth.estimate_gas({"from": self.me, "to": call.to, "data": call.data})
            except REVERTS:
                # a peer's vote no longer counts (posted meanwhile): post ours alone
                call = self.pb._esc.call(fn, j.id, t.as_tuple(), fields, votes[:1])
        return call

    def peer_votes(self, j: Job, t: PactTerms, round_: int, r: Roster,
                   counted: dict[int, int]) -> list[tuple[Any, ...]]:
        """Peers' signed votes for this job and round, fetched from their endpoints and kept
        only if they verify and would count."""
        out: list[tuple[Any, ...]] = []
        domain = self.pb.domain()
        for member, url in self.cfg.peers.items():
            i = r.index(member)
            if member == self.me or i is None or i in counted:
                continue
            if round_ == 0 and not j.reserved >> i & 1:
                continue
            try:
                resp = self._session.get(f"{url}/votes/{j.id}", params={"round": round_},
                                         timeout=2.0)
                if resp.status_code != 200:
                    continue
                doc = resp.json()
                v = Vote(job_id=j.id, deliverable_hash=j.deliverable_hash,
                         spec_hash=t.spec_hash, score_bps=int(doc["score_bps"]),
                         evidence_hash=doc["evidence_hash"], round=round_,
                         deadline=int(doc["deadline"]))
                sv = SignedVote(vote=v, member=member,
                                signature=bytes.fromhex(str(doc["signature"]).removeprefix("0x")))
                eip712.verify(eip712.digest(domain, eip712.vote_struct_hash(v)), sv.signature,
                              member)
            except Exception as e:  # a peer's bad answer never stops our own vote
                log.info("peer vote skipped", extra={"fields": {"peer": member,
                                                                "error": type(e).__name__}})
                continue
            first = self._peer_seen.setdefault((j.id, round_, member), self._head)
            if self._head - first >= self.cfg.peer_grace_blocks:
                out.append(sv.as_tuple())
        return out

    def on_final(self, it: Intent, ok: bool) -> None:
        """A transaction of `it` is final: done if it succeeded and left nothing to do; else
        the intent is re-examined (a vote is done once counted or its round is over)."""
        if it.kind == "batch":
            for m in self.store.batch_members(it.id):
                self.on_final(m, ok)
            self.store.set_intent(it.id, "done", "confirmed" if ok else "reverted")
            return
        if ok and it.kind != "vote":
            self.store.set_intent(it.id, "done", "confirmed")
            return
        if it.kind == "vote" and self._own_vote_counted(it):
            self.store.set_intent(it.id, "done", "counted")
            return
        self.store.set_intent(it.id, "new", "re-examine after a failed transaction")

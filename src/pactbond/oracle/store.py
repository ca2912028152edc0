"""The oracle's SQLite store: WAL, `synchronous=FULL`, versioned migrations.

It holds what must survive a crash: the watch cursor, the jobs followed, evaluations and their
evidence, every signed vote and batch, and every signed transaction. The never-sign-twice rule is
in the schema itself: `votes` has one row per (job, round), and a trigger refuses any change of
its score or evidence, so a second, different vote cannot be stored, and a batch item must agree
with the (job, round) row it covers. `sign_vote` signs inside the transaction that stores the
signature: if the commit fails the signature is dropped, so nothing signed leaves the process
unpersisted.

`PACTBOND_TEST_DB_FAULT=readonly|full` (tests only) opens the database as a read-only or a full
one, to show that the service fails closed.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pactbond.errors import PactbondError


class StoreError(PactbondError, RuntimeError):
    """The database cannot be opened, read or written: the service fails closed."""


class ConflictingVoteError(StoreError):
    """A different vote for a (job, round) this oracle has already signed: refused."""


DB_FAULT_ENV = "PACTBOND_TEST_DB_FAULT"

MIGRATIONS: list[str] = [
    # 1: the initial schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE blocks (number INTEGER PRIMARY KEY, hash BLOB NOT NULL);
    CREATE TABLE blobs (
        hash BLOB NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (hash, kind)
    );
    CREATE TABLE jobs (
        job_id INTEGER PRIMARY KEY,
        pact_id INTEGER NOT NULL,
        uri TEXT NOT NULL DEFAULT '',
        seen_block INTEGER NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX jobs_open ON jobs (done, job_id);
    CREATE TABLE evaluations (
        job_id INTEGER NOT NULL,
        round INTEGER NOT NULL CHECK (round IN (0, 1)),
        score INTEGER NOT NULL CHECK (score BETWEEN 0 AND 10000),
        evidence_hash BLOB NOT NULL,
        reveal_hash BLOB,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (job_id, round)
    );
    CREATE TABLE votes (
        job_id INTEGER NOT NULL,
        round INTEGER NOT NULL CHECK (round IN (0, 1)),
        score INTEGER NOT NULL CHECK (score BETWEEN 0 AND 10000),
        evidence_hash BLOB NOT NULL,
        deliverable_hash BLOB NOT NULL,
        spec_hash BLOB NOT NULL,
        deadline INTEGER NOT NULL,
        member TEXT NOT NULL,
        signature BLOB NOT NULL,
        counted INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (job_id, round)
    );
    CREATE TRIGGER votes_immutable BEFORE UPDATE OF
        job_id, round, score, evidence_hash, deliverable_hash, spec_hash, deadline, member,
        signature ON votes
    BEGIN
        SELECT RAISE(ABORT, 'conflicting vote: a signed vote is never changed');
    END;
    CREATE TRIGGER votes_kept BEFORE DELETE ON votes
    BEGIN
        SELECT RAISE(ABORT, 'conflicting vote: a signed vote is never deleted');
    END;
    CREATE TABLE batches (
        root BLOB PRIMARY KEY,
        round INTEGER NOT NULL,
        deadline INTEGER NOT NULL,
        member TEXT NOT NULL,
        signature BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE batch_items (
        root BLOB NOT NULL REFERENCES batches (root),
        job_id INTEGER NOT NULL,
        round INTEGER NOT NULL,
        score INTEGER NOT NULL,
        evidence_hash BLOB NOT NULL,
        PRIMARY KEY (root, job_id)
    );
    CREATE TRIGGER batch_items_agree BEFORE INSERT ON batch_items
    WHEN NOT EXISTS (
        SELECT 1 FROM votes v WHERE v.job_id = NEW.job_id AND v.round = NEW.round
          AND v.score = NEW.score AND v.evidence_hash = NEW.evidence_hash)
    BEGIN
        SELECT RAISE(ABORT, 'conflicting vote: a batch item differs from the signed vote');
    END;
    CREATE TABLE intents (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        job_id INTEGER NOT NULL,
        round INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'new',
        note TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (kind, job_id, round)
    );
    CREATE INDEX intents_status ON intents (status);
    CREATE TABLE txs (
        id INTEGER PRIMARY KEY,
        intent_id INTEGER NOT NULL REFERENCES intents (id),
        nonce INTEGER NOT NULL,
        raw BLOB NOT NULL,
        tx_hash BLOB NOT NULL UNIQUE,
        max_fee INTEGER NOT NULL,
        tip INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'signed',
        sent_block INTEGER,
        mined_block INTEGER,
        mined_hash BLOB,
        receipt_status INTEGER,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX txs_status ON txs (status);
    CREATE INDEX txs_nonce ON txs (nonce);
    """,
    # 2: batch transactions: one `batch` intent posts the votes of many `vote` intents
    """
    CREATE TABLE batch_members (
        batch_intent INTEGER NOT NULL REFERENCES intents (id),
        vote_intent INTEGER NOT NULL REFERENCES intents (id),
        PRIMARY KEY (batch_intent, vote_intent)
    );
    """,
    # 3: the upload quota asks which deliverables a vote names
    """
    CREATE INDEX votes_deliverable ON votes (deliverable_hash);
    CREATE INDEX blobs_kind_created ON blobs (kind, created_at);
    """,
]

# a transaction is live until it is confirmed, replaced by a bumped one, or superseded
LIVE_TX = ("signed", "sent", "mined")


@dataclass(frozen=True)
class StoredVote:
    job_id: int
    round: int
    score: int
    evidence_hash: bytes
    deliverable_hash: bytes
    spec_hash: bytes
    deadline: int
    member: str
    signature: bytes
    counted: bool


@dataclass(frozen=True)
class Tx:
    id: int
    intent_id: int
    nonce: int
    raw: bytes
    tx_hash: bytes
    max_fee: int
    tip: int
    status: str
    sent_block: int | None
    mined_block: int | None
    mined_hash: bytes | None
    receipt_status: int | None


@dataclass(frozen=True)
class Intent:
    id: int
    kind: str
    job_id: int
    round: int
    status: str
    note: str


def _statements(script: str) -> list[str]:
    """A migration script's statements, one by one (a trigger's body keeps its semicolons)."""
    out: list[str] = []
    buf = ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n\t;"):
                out.append(buf.strip())
            buf = ""
    return out


class Store:
    """One SQLite database file; safe to use from the service loop and the HTTP threads."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.RLock()
        try:
            # private to the service's user: the database holds hidden-set reveals, the
            # member's votes and other agents' deliverables (an agent's code run by the
            # evaluator must not read them); SQLite gives its WAL files the database's mode
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fresh = not self.path.exists()
            self._db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None,
                                       check_same_thread=False)
            if fresh:
                os.chmod(self.path, 0o600)
            self._wal()
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
            self._test_fault(os.environ.get(DB_FAULT_ENV, ""))
        except sqlite3.Error as e:
            self._close_quietly()
            raise StoreError(f"cannot open the database {self.path}: {e}") from None
        except StoreError:
            self._close_quietly()
            raise

    def _wal(self) -> None:
        """Switch to WAL. The switch takes an exclusive lock and SQLite answers "locked" at
        once, without its busy wait, while another opener of a new database holds one: retried
        for up to the connection's 5 s."""
        for _ in range(100):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e):
                    raise
                time.sleep(0.05)
        self._db.execute("PRAGMA journal_mode=WAL")

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            with suppress(sqlite3.Error):
                db.close()

    def _test_fault(self, fault: str) -> None:
        """Test hook: make this connection's writes fail the way a read-only or a full disk
        makes them fail (after the migrations, so the schema exists)."""
        if fault == "readonly":
            self._db.execute("PRAGMA query_only=ON")
        elif fault == "full":
            # the file may not grow; but a small database still has room inside its pages
            # (max_page_count alone lets a vote row in), and a full disk also refuses the WAL
            # frames a commit appends: so every INSERT fails with SQLite's disk-full message
            pages = int(self._db.execute("PRAGMA page_count").fetchone()[0])
            self._db.execute(f"PRAGMA max_page_count={pages}")
            for (table,) in self._db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                self._db.execute(
                    f"CREATE TEMP TRIGGER full_{table} BEFORE INSERT ON main.{table} "
                    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        elif fault:
            raise StoreError(f"{DB_FAULT_ENV}={fault!r}: expected readonly or full")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _now(self) -> int:
        return int(self._clock())

    def now(self) -> int:
        """The store's clock (unix seconds): the time its rows are stamped with."""
        return self._now()

    def _migrate(self) -> None:
        """Apply the missing migrations, each in one transaction that reads the schema version
        under the write lock: two processes opening a new database at once (the service and a
        CLI command) both read version 0 before, and the second failed on "table exists"."""
        with self._lock:
            for _ in range(len(MIGRATIONS) + 1):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
                    if version > len(MIGRATIONS):
                        raise StoreError(
                            f"the database {self.path} has schema {version}, newer than this "
                            f"service's {len(MIGRATIONS)}: upgrade pactbond")
                    if version == len(MIGRATIONS):
                        self._db.execute("COMMIT")
                        return
                    for stmt in _statements(MIGRATIONS[version]):
                        self._db.execute(stmt)
                    self._db.execute(f"PRAGMA user_version = {version + 1}")
                    self._db.execute("COMMIT")
                except BaseException:
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    raise

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on any error; a
        database error surfaces as StoreError so callers fail closed."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StoreError(f"database unavailable: {e}") from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as e:
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(e, sqlite3.IntegrityError) and "conflicting vote" in str(e):
                    raise ConflictingVoteError(str(e)) from None
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"database write failed: {e}") from None
                raise

    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise StoreError(f"database read failed: {e}") from None

    # -- meta and the watch cursor -------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        rows = self._q("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def block_hash(self, number: int) -> bytes | None:
        rows = self._q("SELECT hash FROM blocks WHERE number = ?", (number,))
        return bytes(rows[0][0]) if rows else None

    def advance(self, number: int, block_hash: bytes, keep: int = 256) -> None:
        """Record the last block watched (its hash detects a reorg later)."""
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO blocks (number, hash) VALUES (?, ?)",
                       (number, block_hash))
            db.execute("DELETE FROM blocks WHERE number < ? OR number > ?", (number - keep, number))
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('cursor', ?)",
                       (str(number),))

    def rewind(self, number: int) -> None:
        """Forget watched blocks above `number` (a reorg replaced them)."""
        with self.tx() as db:
            db.execute("DELETE FROM blocks WHERE number > ?", (number,))
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('cursor', ?)",
                       (str(number),))

    def cursor(self) -> int | None:
        v = self.get_meta("cursor")
        return int(v) if v is not None else None

    # -- blobs (deliverables, evidence packets, reveals) ---------------------------------------
    def put_blob(self, h: bytes, kind: str, data: bytes) -> None:
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO blobs (hash, kind, data, created_at) "
                       "VALUES (?, ?, ?, ?)", (h, kind, data, self._now()))

    _PENDING = ("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM blobs b WHERE kind = 'deliverable' "
                "AND created_at > ? AND NOT EXISTS (SELECT 1 FROM votes v WHERE "
                "v.deliverable_hash = b.hash)")

    def pending_upload_bytes(self, since: int = 0) -> int:
        """Bytes of deliverables stored after `since` (unix time) that no vote of this oracle
        names yet."""
        return int(self._q(self._PENDING, (since,))[0][0])

    def put_upload(self, h: bytes, data: bytes, limit: int, since: int = 0) -> bool:
        """Store an uploaded deliverable unless the bytes stored after `since` that no vote
        names would pass `limit` (checked in the write transaction, so concurrent uploads
        cannot overshoot it together). True if stored or already there; False: quota full."""
        with self.tx() as db:
            if db.execute("SELECT 1 FROM blobs WHERE hash = ? AND kind = 'deliverable'",
                          (h,)).fetchone():
                return True
            if int(db.execute(self._PENDING, (since,)).fetchone()[0]) + len(data) > limit:
                return False
            db.execute("INSERT INTO blobs (hash, kind, data, created_at) VALUES "
                       "(?, 'deliverable', ?, ?)", (h, data, self._now()))
            return True

    def prune_uploads(self, before: int) -> int:
        """Delete deliverables stored before `before` (unix time) that no vote names: bytes
        nobody asked this oracle to judge in time. Returns how many."""
        with self.tx() as db:
            return db.execute("DELETE FROM blobs WHERE kind = 'deliverable' AND created_at < ? "
                              "AND NOT EXISTS (SELECT 1 FROM votes v WHERE "
                              "v.deliverable_hash = blobs.hash)", (before,)).rowcount

    def blob(self, h: bytes, kind: str | None = None) -> bytes | None:
        rows = (self._q("SELECT data FROM blobs WHERE hash = ? AND kind = ?", (h, kind))
                if kind is not None else self._q("SELECT data FROM blobs WHERE hash = ?", (h,)))
        return bytes(rows[0][0]) if rows else None

    # -- jobs followed ---------------------------------------------------------------------------
    def follow(self, job_id: int, pact_id: int, block: int, uri: str = "") -> bool:
        """Start following a job (idempotent; a later `uri` fills an empty one). True if new."""
        with self.tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO jobs (job_id, pact_id, uri, seen_block, updated_at) "
                "VALUES (?, ?, ?, ?, ?)", (job_id, pact_id, uri, block, self._now()))
            if uri:
                db.execute("UPDATE jobs SET uri = ? WHERE job_id = ? AND uri = ''", (uri, job_id))
            return cur.rowcount == 1

    def set_uri(self, job_id: int, uri: str) -> None:
        """Where the submission says the deliverable can be fetched (a followed job)."""
        with self.tx() as db:
            db.execute("UPDATE jobs SET uri = ? WHERE job_id = ?", (uri[:2048], job_id))

    def open_jobs(self, limit: int = 10_000) -> list[tuple[int, int, str]]:
        """(job id, pact id, uri) of the jobs not yet done, oldest first."""
        return [(int(a), int(b), str(c)) for a, b, c in self._q(
            "SELECT job_id, pact_id, uri FROM jobs WHERE done = 0 ORDER BY job_id LIMIT ?",
            (limit,))]

    def job_uri(self, job_id: int) -> str:
        rows = self._q("SELECT uri FROM jobs WHERE job_id = ?", (job_id,))
        return str(rows[0][0]) if rows else ""

    def finish_job(self, job_id: int) -> None:
        with self.tx() as db:
            db.execute("UPDATE jobs SET done = 1, updated_at = ? WHERE job_id = ?",
                       (self._now(), job_id))

    def reopen_job(self, job_id: int) -> None:
        with self.tx() as db:
            db.execute("UPDATE jobs SET done = 0, updated_at = ? WHERE job_id = ?",
                       (self._now(), job_id))

    def note_failure(self, job_id: int, error: str) -> int:
        """Count a failed attempt at a job; returns the attempts so far."""
        with self.tx() as db:
            db.execute("UPDATE jobs SET attempts = attempts + 1, last_error = ?, updated_at = ? "
                       "WHERE job_id = ?", (error[:500], self._now(), job_id))
            rows = db.execute("SELECT attempts FROM jobs WHERE job_id = ?", (job_id,)).fetchall()
        return int(rows[0][0]) if rows else 0

    # -- evaluations -----------------------------------------------------------------------------
    def save_evaluation(self, job_id: int, round_: int, score: int, evidence_hash: bytes,
                        evidence: bytes, reveal: bytes | None = None,
                        reveal_hash: bytes | None = None) -> tuple[int, bytes]:
        """Keep an evaluation with its evidence packet (and the hidden reveal, if any). The
        first evaluation of a (job, round) wins: returns the stored (score, evidence hash)."""
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO blobs (hash, kind, data, created_at) "
                       "VALUES (?, 'evidence', ?, ?)", (evidence_hash, evidence, self._now()))
            if reveal is not None and reveal_hash is not None:
                db.execute("INSERT OR IGNORE INTO blobs (hash, kind, data, created_at) "
                           "VALUES (?, 'reveal', ?, ?)", (reveal_hash, reveal, self._now()))
            db.execute("INSERT OR IGNORE INTO evaluations (job_id, round, score, evidence_hash, "
                       "reveal_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                       (job_id, round_, score, evidence_hash, reveal_hash, self._now()))
            row = db.execute("SELECT score, evidence_hash FROM evaluations WHERE job_id = ? "
                             "AND round = ?", (job_id, round_)).fetchone()
        return int(row[0]), bytes(row[1])

    def evaluation(self, job_id: int, round_: int) -> tuple[int, bytes, bytes | None] | None:
        """(score, evidence hash, reveal hash) of a stored evaluation."""
        rows = self._q("SELECT score, evidence_hash, reveal_hash FROM evaluations "
                       "WHERE job_id = ? AND round = ?", (job_id, round_))
        if not rows:
            return None
        s, e, r = rows[0]
        return int(s), bytes(e), bytes(r) if r is not None else None

    def reveal_hash_for(self, evidence_hash: bytes) -> tuple[int, bytes] | None:
        """(job id, reveal hash) of the evaluation whose evidence is `evidence_hash`."""
        rows = self._q("SELECT job_id, reveal_hash FROM evaluations WHERE evidence_hash = ? "
                       "AND reveal_hash IS NOT NULL", (evidence_hash,))
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    # -- votes: the never-sign-twice rule --------------------------------------------------------
    def sign_vote(
        self, job_id: int, round_: int, score: int, evidence_hash: bytes,
        deliverable_hash: bytes, spec_hash: bytes, deadline: int, member: str,
        sign: Callable[[], bytes],
    ) -> StoredVote:
        """The signed vote of (job, round): the stored one when it names the same vote, else
        `sign()` is called and its signature stored in the same transaction. A different score,
        evidence, deliverable, spec or deadline raises ConflictingVoteError and signs nothing."""
        with self.tx() as db:
            row = db.execute("SELECT * FROM votes WHERE job_id = ? AND round = ?",
                             (job_id, round_)).fetchone()
            if row is not None:
                v = _vote(row)
                same = (v.score, v.evidence_hash, v.deliverable_hash, v.spec_hash, v.deadline,
                        v.member) == (score, evidence_hash, deliverable_hash, spec_hash, deadline,
                                      member)
                if not same:
                    raise ConflictingVoteError(
                        f"job {job_id} round {round_} already has a signed vote (score "
                        f"{v.score}); refusing to sign score {score}"
                    )
                return v
            signature = sign()
            db.execute(
                "INSERT INTO votes (job_id, round, score, evidence_hash, deliverable_hash, "
                "spec_hash, deadline, member, signature, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, round_, score, evidence_hash, deliverable_hash, spec_hash, deadline,
                 member, signature, self._now()))
        return StoredVote(job_id, round_, score, evidence_hash, deliverable_hash, spec_hash,
                          deadline, member, signature, False)

    def sign_batch(
        self, root: bytes, round_: int, deadline: int, member: str,
        items: list[tuple[int, int, bytes]], sign: Callable[[], bytes],
    ) -> bytes:
        """Sign a VoteBatch over (job id, score, evidence hash) items, each of which must agree
        with this oracle's signed vote of that (job, round): else ConflictingVoteError, nothing
        signed. The same root returns the stored signature."""
        with self.tx() as db:
            row = db.execute("SELECT signature FROM batches WHERE root = ?", (root,)).fetchone()
            if row is not None:
                return bytes(row[0])
            db.execute("INSERT INTO batches (root, round, deadline, member, signature, created_at)"
                       " VALUES (?, ?, ?, ?, x'', ?)", (root, round_, deadline, member,
                                                         self._now()))
            db.executemany("INSERT INTO batch_items (root, job_id, round, score, evidence_hash) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [(root, j, round_, s, e) for j, s, e in items])
            signature = sign()
            db.execute("UPDATE batches SET signature = ? WHERE root = ?", (signature, root))
        return signature

    def vote(self, job_id: int, round_: int) -> StoredVote | None:
        rows = self._q("SELECT * FROM votes WHERE job_id = ? AND round = ?", (job_id, round_))
        return _vote(rows[0]) if rows else None

    def mark_counted(self, job_id: int, round_: int) -> None:
        with self.tx() as db:
            db.execute("UPDATE votes SET counted = 1 WHERE job_id = ? AND round = ?",
                       (job_id, round_))

    def count_votes(self) -> int:
        return int(self._q("SELECT COUNT(*) FROM votes")[0][0])

    # -- intents and transactions ----------------------------------------------------------------
    def intend_batch(self, round_: int, members: list[int]) -> Intent:
        """A new `batch` intent posting the votes of `members` (vote intents, now 'sending')."""
        with self.tx() as db:
            n = db.execute("SELECT COALESCE(MAX(job_id), 0) + 1 FROM intents "
                           "WHERE kind = 'batch'").fetchone()[0]
            cur = db.execute("INSERT INTO intents (kind, job_id, round, status, created_at, "
                             "updated_at) VALUES ('batch', ?, ?, 'new', ?, ?)",
                             (n, round_, self._now(), self._now()))
            bid = int(cur.lastrowid or 0)
            db.executemany("INSERT INTO batch_members (batch_intent, vote_intent) VALUES (?, ?)",
                           [(bid, m) for m in members])
            marks = ",".join("?" * len(members))
            db.execute(f"UPDATE intents SET status = 'sending', updated_at = ? "  # noqa: S608
                       f"WHERE id IN ({marks})", (self._now(), *members))
        return self.intent(bid)

    def release_orphans(self) -> int:
        """Intents left 'sending' with no live transaction (their own, or their batch's): a
        crash or a node error between a transaction's last write and its intent's update left
        them so, and nothing else ever moves them. Vote and keeper intents go back to 'new'
        (re-examined against the chain: done if counted or no longer due), batch intents to
        'done'. Returns how many were released."""
        with self.tx() as db:
            rows = db.execute(
                "SELECT i.id, i.kind FROM intents i WHERE i.status = 'sending' "
                "AND NOT EXISTS (SELECT 1 FROM txs t WHERE t.intent_id = i.id "
                "AND t.status IN ('signed', 'sent', 'mined')) "
                "AND NOT EXISTS (SELECT 1 FROM batch_members b JOIN txs t ON "
                "t.intent_id = b.batch_intent WHERE b.vote_intent = i.id "
                "AND t.status IN ('signed', 'sent', 'mined'))"
            ).fetchall()
            for iid, kind in rows:
                db.execute("UPDATE intents SET status = ?, note = ?, updated_at = ? WHERE id = ?",
                           ("done" if kind == "batch" else "new", "released: no live transaction",
                            self._now(), iid))
        return len(rows)

    def drop_unsent_batch(self, batch_intent: int) -> bool:
        """Delete a batch intent (and its member rows) that never had a transaction; False if
        it had one (its rows are history)."""
        with self.tx() as db:
            if db.execute("SELECT 1 FROM txs WHERE intent_id = ?", (batch_intent,)).fetchone():
                return False
            db.execute("DELETE FROM batch_members WHERE batch_intent = ?", (batch_intent,))
            db.execute("DELETE FROM intents WHERE id = ? AND kind = 'batch'", (batch_intent,))
        return True

    def batch_members(self, batch_intent: int) -> list[Intent]:
        return [Intent(*r) for r in self._q(
            "SELECT i.id, i.kind, i.job_id, i.round, i.status, i.note FROM batch_members b "
            "JOIN intents i ON i.id = b.vote_intent WHERE b.batch_intent = ? ORDER BY i.id",
            (batch_intent,))]

    def intend(self, kind: str, job_id: int, round_: int = 0) -> Intent:
        """The one intent of (kind, job, round): a job delivered 100 times is one intent."""
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO intents (kind, job_id, round, created_at, "
                       "updated_at) VALUES (?, ?, ?, ?, ?)",
                       (kind, job_id, round_, self._now(), self._now()))
            row = db.execute("SELECT id, kind, job_id, round, status, note FROM intents WHERE "
                             "kind = ? AND job_id = ? AND round = ?",
                             (kind, job_id, round_)).fetchone()
        return Intent(*row)

    def revive(self, kind: str, job_id: int, round_: int, min_age_s: int, note: str) -> bool:
        """Set the (kind, job, round) intent back to 'new' if it is done or failed and was last
        changed at least `min_age_s` ago (so a permanent refusal is retried twice a minute, not
        every tick). True if it was revived."""
        with self.tx() as db:
            cur = db.execute(
                "UPDATE intents SET status = 'new', note = ?, updated_at = ? WHERE kind = ? "
                "AND job_id = ? AND round = ? AND status IN ('done', 'failed') "
                "AND updated_at <= ?",
                (note, self._now(), kind, job_id, round_, self._now() - min_age_s))
            return cur.rowcount > 0

    def intents(self, status: str | tuple[str, ...]) -> list[Intent]:
        ss = (status,) if isinstance(status, str) else status
        marks = ",".join("?" * len(ss))
        return [Intent(*r) for r in self._q(
            f"SELECT id, kind, job_id, round, status, note FROM intents WHERE status IN ({marks})"  # noqa: S608
            " ORDER BY id", ss)]

    def intent(self, intent_id: int) -> Intent:
        rows = self._q("SELECT id, kind, job_id, round, status, note FROM intents WHERE id = ?",
                       (intent_id,))
        return Intent(*rows[0])

    def set_intent(self, intent_id: int, status: str, note: str = "") -> None:
        with self.tx() as db:
            db.execute("UPDATE intents SET status = ?, note = ?, updated_at = ? WHERE id = ?",
                       (status, note[:500], self._now(), intent_id))

    def save_tx(self, intent_id: int, nonce: int, raw: bytes, tx_hash: bytes, max_fee: int,
                tip: int, replaces: int | None = None) -> Tx:
        """Persist a signed transaction before it is broadcast (and mark the one it replaces)."""
        with self.tx() as db:
            if replaces is not None:
                db.execute("UPDATE txs SET status = 'replaced' WHERE id = ?", (replaces,))
            cur = db.execute(
                "INSERT INTO txs (intent_id, nonce, raw, tx_hash, max_fee, tip, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (intent_id, nonce, raw, tx_hash, max_fee, tip, self._now()))
            db.execute("UPDATE intents SET status = 'sending', updated_at = ? WHERE id = ?",
                       (self._now(), intent_id))
            tx_id = int(cur.lastrowid or 0)
        return self.tx_by_id(tx_id)

    def tx_by_id(self, tx_id: int) -> Tx:
        return _tx(self._q("SELECT * FROM txs WHERE id = ?", (tx_id,))[0])

    def live_txs(self) -> list[Tx]:
        return [_tx(r) for r in self._q(
            "SELECT * FROM txs WHERE status IN ('signed', 'sent', 'mined') ORDER BY nonce, id")]

    def txs_of(self, intent_id: int) -> list[Tx]:
        return [_tx(r) for r in self._q("SELECT * FROM txs WHERE intent_id = ? ORDER BY id",
                                        (intent_id,))]

    def update_tx(self, tx_id: int, **fields: Any) -> None:
        allowed = {"status", "sent_block", "mined_block", "mined_hash", "receipt_status"}
        if not fields or set(fields) - allowed:
            raise StoreError(f"cannot update tx fields {sorted(set(fields) - allowed)}")
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self.tx() as db:
            db.execute(f"UPDATE txs SET {cols} WHERE id = ?", (*fields.values(), tx_id))  # noqa: S608

    def record_mined(self, live_id: int, mined_id: int, block: int, block_hash: bytes,
                     receipt_status: int) -> None:
        """The attempt `mined_id` of a nonce was mined: it is followed from now on and the live
        attempt `live_id` (if another) is marked replaced, in one transaction (a crash between
        the two left the mined attempt 'replaced' and unfollowed)."""
        with self.tx() as db:
            if live_id != mined_id:
                db.execute("UPDATE txs SET status = 'replaced' WHERE id = ?", (live_id,))
            db.execute("UPDATE txs SET status = 'mined', mined_block = ?, mined_hash = ?, "
                       "receipt_status = ? WHERE id = ?",
                       (block, block_hash, receipt_status, mined_id))

    def max_nonce(self) -> int | None:
        """The highest nonce this oracle has signed a transaction with, live or not."""
        v = self._q("SELECT MAX(nonce) FROM txs WHERE status != 'void'")[0][0]
        return int(v) if v is not None else None


def _vote(row: Any) -> StoredVote:
    j, r, s, e, d, sp, dl, m, sig, c, _ = row
    return StoredVote(int(j), int(r), int(s), bytes(e), bytes(d), bytes(sp), int(dl), str(m),
                      bytes(sig), bool(c))


def _tx(row: Any) -> Tx:
    i, it, n, raw, h, mf, tip, st, sb, mb, mh, rs, _ = row
    return Tx(int(i), int(it), int(n), bytes(raw), bytes(h), int(mf), int(tip), str(st),
              sb, mb, bytes(mh) if mh is not None else None, rs)

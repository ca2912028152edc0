"""The oracle's HTTP API over real loopback HTTP, backed by a real SQLite store in tmp_path."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from prometheus_client import CONTENT_TYPE_LATEST

from pactbond.oracle.api import (
    REASON_HASH,
    REASON_HEADER_HASH,
    REASON_JOB_ID,
    REASON_ROUND,
    Api,
    ApiContext,
    ApiError,
)
from pactbond.oracle.metrics import Metrics
from pactbond.oracle.spec import content_hash, hex32
from pactbond.oracle.store import Store

LIMIT = 1024
MEMBER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # anvil's account 1 (address only)
ESCROW = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN_ID = 31337
SIG = bytes(range(65))  # a stand-in signature: the API serves what the store holds
DELIVERABLE = b"the agent's deliverable"
SPEC_HASH = content_hash(b"spec")
EVIDENCE = b'{"pactbond_evidence":1,"job_id":7}'
REVEAL = b'{"pactbond_reveal":1,"job_id":7,"items":["secret"]}'
PLAIN_EVIDENCE = b'{"pactbond_evidence":1,"job_id":8}'


@dataclass
class World:
    store: Store
    metrics: Metrics
    api: Api
    ready: list[tuple[bool, str]] = field(default_factory=lambda: [(True, "")])
    released: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return self.api.url

    def get(self, path: str, **kw: object) -> requests.Response:
        return requests.get(self.url + path, timeout=5, **kw)  # type: ignore[arg-type]

    def post(self, path: str, data: bytes, **kw: object) -> requests.Response:
        return requests.post(self.url + path, data=data, timeout=5, **kw)  # type: ignore[arg-type]


def make_ctx(store: Store, metrics: Metrics, world_ready: list[tuple[bool, str]],
             released: set[int]) -> ApiContext:
    return ApiContext(
        store=store, metrics=metrics, ready=lambda: world_ready[-1],
        revealable=lambda job_id: job_id in released, max_deliverable_bytes=LIMIT,
        member=MEMBER, chain_id=CHAIN_ID, escrow=ESCROW)


@pytest.fixture
def tmp_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "alone.db")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = Store(tmp_path / "oracle.db")
    metrics = Metrics()
    ready: list[tuple[bool, str]] = [(True, "")]
    released: set[int] = set()
    api = Api(make_ctx(store, metrics, ready, released)).start()
    w = World(store, metrics, api, ready, released)
    try:
        yield w
    finally:
        api.stop()
        store.close()


def seed_vote(store: Store, job_id: int = 7, round_: int = 0, score: int = 9000) -> None:
    store.sign_vote(job_id, round_, score, content_hash(EVIDENCE), content_hash(DELIVERABLE),
                    SPEC_HASH, 1_900_000_000 + round_, MEMBER, lambda: SIG)


def seed_evaluation(store: Store) -> tuple[bytes, bytes]:
    """Job 7 with a hidden reveal, job 8 without; returns (evidence hash, reveal hash) of job 7."""
    eh, rh = content_hash(EVIDENCE), content_hash(REVEAL)
    store.save_evaluation(7, 0, 9000, eh, EVIDENCE, REVEAL, rh)
    store.save_evaluation(8, 0, 5000, content_hash(PLAIN_EVIDENCE), PLAIN_EVIDENCE)
    return eh, rh


def raw(world: World, payload: bytes, read_timeout: float = 3.0) -> bytes:
    """Send raw bytes and read until the server closes the connection."""
    host, port = world.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as s:
        s.sendall(payload)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def status_and_json(response: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


# -- health, readiness, info, metrics -------------------------------------------------------------

def test_health__alive__ok(world: World) -> None:
    r = world.get("/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Server"] == "pactbond-oracle"


def test_ready__ready_then_not__200_then_503_with_reason(world: World) -> None:
    r = world.get("/ready")
    assert (r.status_code, r.json()) == (200, {"ready": True})
    world.ready.append((False, "node unreachable"))
    r = world.get("/ready")
    assert (r.status_code, r.json()) == (503, {"ready": False, "reason": "node unreachable"})


def test_ready__check_raises__503_without_internals(tmp_store: Store) -> None:
    store = tmp_store

    def broken() -> tuple[bool, str]:
        raise RuntimeError("secret internals")

    ctx = make_ctx(store, Metrics(), [(True, "")], set())
    ctx.ready = broken
    with Api(ctx) as api:
        r = requests.get(api.url + "/ready", timeout=5)
    assert (r.status_code, r.json()) == (503, {"ready": False, "reason": "readiness check failed"})


def test_info__identity_and_limit(world: World) -> None:
    r = world.get("/info")
    assert (r.status_code, r.json()) == (200, {
        "member": MEMBER, "chain_id": CHAIN_ID, "escrow": ESCROW, "max_deliverable_bytes": LIMIT})


def test_metrics__after_increments__names_and_values(world: World) -> None:
    m = world.metrics
    m.jobs_seen.inc(3)
    m.evaluated.inc()
    m.signed.inc()
    m.submitted.inc()
    m.settled.inc()
    m.failures.labels("store").inc()
    m.queue_depth.set(5)
    m.in_flight.set(2)
    m.balance.set(10**18)
    r = world.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == CONTENT_TYPE_LATEST
    text = r.text
    for line in ("pactbond_jobs_seen_total 3.0", "pactbond_jobs_evaluated_total 1.0",
                 "pactbond_votes_signed_total 1.0", "pactbond_txs_submitted_total 1.0",
                 "pactbond_jobs_settled_total 1.0", 'pactbond_failures_total{kind="store"} 1.0',
                 "pactbond_queue_depth 5.0", "pactbond_txs_in_flight 2.0",
                 "pactbond_signer_balance_wei 1e+18"):
        assert line in text.splitlines(), line


# -- votes -------------------------------------------------------------------------------------------

def test_votes__stored_vote__served_with_hex_fields(world: World) -> None:
    seed_vote(world.store)
    r = world.get("/votes/7")
    assert r.status_code == 200
    assert r.json() == {
        "job_id": 7, "round": 0, "member": MEMBER, "score_bps": 9000,
        "evidence_hash": hex32(content_hash(EVIDENCE)),
        "deliverable_hash": hex32(content_hash(DELIVERABLE)), "spec_hash": hex32(SPEC_HASH),
        "deadline": 1_900_000_000, "signature": "0x" + SIG.hex(), "chain_id": CHAIN_ID,
        "escrow": ESCROW}
    assert world.get("/votes/7?round=0").json() == r.json()


def test_votes__round_1__the_appeal_vote(world: World) -> None:
    seed_vote(world.store, round_=0, score=9000)
    seed_vote(world.store, round_=1, score=1000)
    r = world.get("/votes/7?round=1")
    assert r.status_code == 200
    assert (r.json()["round"], r.json()["score_bps"], r.json()["deadline"]) == (1, 1000,
                                                                                1_900_000_001)


@pytest.mark.parametrize("path,reason", [
    ("/votes/7?round=1", "no vote for job 7 round 1"),
    ("/votes/8", "no vote for job 8 round 0"),
    # a valid uint256 id beyond SQLite's range cannot be stored: simply not found
    (f"/votes/{2**200}", f"no vote for job {2**200} round 0"),
])
def test_votes__none_stored__404(world: World, path: str, reason: str) -> None:
    seed_vote(world.store)
    r = world.get(path)
    assert (r.status_code, r.json()) == (404, {"error": reason})


@pytest.mark.parametrize("path,reason", [
    ("/votes/abc", REASON_JOB_ID),
    ("/votes/-1", REASON_JOB_ID),
    ("/votes/1.5", REASON_JOB_ID),
    ("/votes/+1", REASON_JOB_ID),
    ("/votes/1_0", REASON_JOB_ID),
    ("/votes/0x07", REASON_JOB_ID),
    (f"/votes/{2**256}", REASON_JOB_ID),
    ("/votes/7?round=2", REASON_ROUND),
    ("/votes/7?round=-1", REASON_ROUND),
    ("/votes/7?round=x", REASON_ROUND),
    ("/votes/7?round=", REASON_ROUND),
    ("/votes/7?round=01", REASON_ROUND),
    ("/votes/7?round=0&round=1", "query parameter 'round' given more than once"),
    ("/votes/7?rnd=1", "unknown query parameter 'rnd'"),
    ("/health?verbose=1", "unknown query parameter 'verbose'"),
])
def test_votes__bad_input__400_with_reason(world: World, path: str, reason: str) -> None:
    seed_vote(world.store)
    r = world.get(path)
    assert (r.status_code, r.json()) == (400, {"error": reason})


# -- evidence and reveals ------------------------------------------------------------------------

def test_evidence__stored__exact_bytes_as_json(world: World) -> None:
    eh, _ = seed_evaluation(world.store)
    r = world.get(f"/evidence/{hex32(eh)}")
    assert r.status_code == 200
    assert r.content == EVIDENCE
    assert r.headers["Content-Type"] == "application/json"
    assert content_hash(r.content) == eh
    # hex is case-insensitive
    assert world.get(f"/evidence/0x{eh.hex().upper()}").content == EVIDENCE


def test_evidence__unknown_or_other_kind__404(world: World) -> None:
    _, rh = seed_evaluation(world.store)
    unknown = content_hash(b"nothing")
    r = world.get(f"/evidence/{hex32(unknown)}")
    assert (r.status_code, r.json()) == (404, {"error": f"no evidence {hex32(unknown)}"})
    # the hidden reveal is a blob too, but never served as evidence
    r = world.get(f"/evidence/{hex32(rh)}")
    assert (r.status_code, r.json()) == (404, {"error": f"no evidence {hex32(rh)}"})


@pytest.mark.parametrize("h", [
    "0x12", "0x" + "zz" * 32, "ab" * 32, "0x" + "ab" * 33, "0X" + "ab" * 32, "0x" + "ab" * 31 + "a",
])
def test_evidence__malformed_hash__400(world: World, h: str) -> None:
    for path in (f"/evidence/{h}", f"/evidence/{h}/reveal", f"/deliverables/{h}"):
        r = world.get(path)
        assert (r.status_code, r.json()) == (400, {"error": REASON_HASH}), path


def test_reveal__withheld_until_revealable__then_released(world: World) -> None:
    eh, rh = seed_evaluation(world.store)
    r = world.get(f"/evidence/{hex32(eh)}/reveal")
    assert (r.status_code, r.json()) == (403, {"error": "reveal withheld until job 7 has ended"})
    assert r.headers["Cache-Control"] == "no-store"
    world.released.add(7)
    r = world.get(f"/evidence/{hex32(eh)}/reveal")
    assert r.status_code == 200
    assert r.content == REVEAL
    assert content_hash(r.content) == rh


def test_reveal__none_for_this_evidence__404(world: World) -> None:
    seed_evaluation(world.store)
    world.released.update({7, 8})
    plain = content_hash(PLAIN_EVIDENCE)
    unknown = content_hash(b"nothing")
    for h in (plain, unknown):
        r = world.get(f"/evidence/{hex32(h)}/reveal")
        assert (r.status_code, r.json()) == (404, {"error": f"no reveal for evidence {hex32(h)}"})


def test_reveal__verdict_check_fails__503_and_withheld(tmp_store: Store) -> None:
    store = tmp_store
    eh, _ = seed_evaluation(store)

    def unknown(job_id: int) -> bool:
        raise ConnectionError("node down")

    ctx = make_ctx(store, Metrics(), [(True, "")], set())
    ctx.revealable = unknown
    with Api(ctx) as api:
        r = requests.get(f"{api.url}/evidence/{hex32(eh)}/reveal", timeout=5)
    assert (r.status_code, r.json()) == (503, {"error": "cannot tell whether job 7 has ended"})
    assert REVEAL not in r.content


# -- deliverable uploads -------------------------------------------------------------------------

def test_upload__round_trip__201_then_200_and_same_bytes(world: World) -> None:
    h = content_hash(DELIVERABLE)
    r = world.post("/deliverables", DELIVERABLE)
    assert (r.status_code, r.json()) == (201, {"hash": hex32(h), "size": len(DELIVERABLE)})
    r = world.post("/deliverables", DELIVERABLE)
    assert (r.status_code, r.json()) == (200, {"hash": hex32(h), "size": len(DELIVERABLE)})
    r = world.get(f"/deliverables/{hex32(h)}")
    assert r.status_code == 200
    assert r.content == DELIVERABLE
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert world.store.blob(h, "deliverable") == DELIVERABLE


def test_upload__matching_hash_in_header_or_path__accepted(world: World) -> None:
    a, b = b"first deliverable", b"second deliverable"
    r = world.post("/deliverables", a, headers={"X-Content-Hash": hex32(content_hash(a))})
    assert (r.status_code, r.json()["hash"]) == (201, hex32(content_hash(a)))
    r = world.post(f"/deliverables/{hex32(content_hash(b))}", b,
                   headers={"X-Content-Hash": hex32(content_hash(b))})
    assert (r.status_code, r.json()["hash"]) == (201, hex32(content_hash(b)))
    assert world.store.blob(content_hash(a), "deliverable") == a
    assert world.store.blob(content_hash(b), "deliverable") == b


def test_upload__empty_and_exactly_at_limit__accepted(world: World) -> None:
    for body in (b"", b"z" * LIMIT):
        r = world.post("/deliverables", body)
        assert (r.status_code, r.json()) == (201, {"hash": hex32(content_hash(body)),
                                                   "size": len(body)})
        assert world.store.blob(content_hash(body), "deliverable") == body


@pytest.mark.parametrize("where", ["header", "path"])
def test_upload__hash_mismatch__422_and_nothing_stored(world: World, where: str) -> None:
    claimed = content_hash(b"what the agent promised")
    actual = content_hash(DELIVERABLE)
    if where == "header":
        r = world.post("/deliverables", DELIVERABLE, headers={"X-Content-Hash": hex32(claimed)})
    else:
        r = world.post(f"/deliverables/{hex32(claimed)}", DELIVERABLE)
    assert (r.status_code, r.json()) == (
        422, {"error": f"body hashes to {hex32(actual)}, not {hex32(claimed)}"})
    assert world.store.blob(actual) is None
    assert world.store.blob(claimed) is None


def test_upload__quota_of_unvoted_bytes__507_until_a_vote_names_one(tmp_store: Store) -> None:
    # uploads nobody has voted on yet are bounded (a stranger cannot fill the disk); a vote
    # on a deliverable frees its bytes; a deliverable already stored is still answered
    ctx = make_ctx(tmp_store, Metrics(), [(True, "")], set())
    ctx.max_pending_upload_bytes = 2 * len(DELIVERABLE)
    other, third = b"x" * len(DELIVERABLE), b"y" * len(DELIVERABLE)
    with Api(ctx) as api:
        def post(body: bytes) -> requests.Response:
            return requests.post(api.url + "/deliverables", data=body, timeout=5,
                                 headers={"X-Content-Hash": hex32(content_hash(body))})

        assert post(DELIVERABLE).status_code == 201
        assert post(other).status_code == 201
        r = post(third)
        assert (r.status_code, r.json()) == (507, {"error": (
            f"upload quota full: {2 * len(DELIVERABLE)} bytes of deliverables await a vote here "
            f"(limit {2 * len(DELIVERABLE)}); retry later, or give the submission a URI")})
        assert tmp_store.blob(content_hash(third)) is None
        assert post(other).status_code == 200  # already stored: no new bytes
        seed_vote(tmp_store)  # a vote on DELIVERABLE
        assert tmp_store.pending_upload_bytes() == len(other)
        assert post(third).status_code == 201
        assert tmp_store.blob(content_hash(third), "deliverable") == third


def test_upload__quota__old_uploads_stop_counting_and_are_pruned(tmp_path: Path) -> None:
    # an upload no vote names counts for upload_ttl_s, then the service deletes it: the quota
    # cannot stay full for ever (a voted deliverable is kept)
    now = [1_900_000_000.0]
    store = Store(tmp_path / "ttl.db", clock=lambda: now[0])
    ctx = make_ctx(store, Metrics(), [(True, "")], set())
    ctx.max_pending_upload_bytes, ctx.upload_ttl_s = len(DELIVERABLE), 3_600
    other = b"x" * len(DELIVERABLE)
    try:
        with Api(ctx) as api:
            def post(body: bytes) -> int:
                return requests.post(api.url + "/deliverables", data=body, timeout=5).status_code

            assert post(DELIVERABLE) == 201
            assert post(other) == 507
            now[0] += 3_601
            assert post(other) == 201  # the first upload no longer counts
            seed_vote(store)  # a vote names DELIVERABLE
            assert store.prune_uploads(int(now[0]) - 3_600) == 0  # `other` is young
            now[0] += 3_601
            assert store.prune_uploads(int(now[0]) - 3_600) == 1  # `other`, never voted on
            assert store.blob(content_hash(other)) is None
            assert store.blob(content_hash(DELIVERABLE), "deliverable") == DELIVERABLE
    finally:
        store.close()


def test_upload__quota__concurrent_uploads_cannot_overshoot(tmp_store: Store) -> None:
    # the first check is before the body is read; the write re-checks in its transaction
    assert tmp_store.put_upload(content_hash(DELIVERABLE), DELIVERABLE, len(DELIVERABLE))
    other = b"x" * len(DELIVERABLE)
    assert not tmp_store.put_upload(content_hash(other), other, len(DELIVERABLE))
    assert tmp_store.blob(content_hash(other)) is None
    assert tmp_store.put_upload(content_hash(DELIVERABLE), DELIVERABLE, 0)  # already stored


def test_upload__oversize__413_and_nothing_stored(world: World) -> None:
    body = b"o" * (LIMIT + 1)
    r = world.post("/deliverables", body)
    assert (r.status_code, r.json()) == (
        413, {"error": f"deliverable is {LIMIT + 1} bytes, over the limit of {LIMIT}"})
    assert world.store.blob(content_hash(body)) is None
    # far over the limit: still answered (and none of it buffered)
    r = world.post("/deliverables", b"o" * (4 * 2**20))
    assert r.status_code == 413


def test_upload__oversize_declared__refused_before_any_body_is_sent(world: World) -> None:
    # no body follows the headers: a server that tried to read it would hang past our timeout
    out = raw(world, b"POST /deliverables HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 1000000000\r\n\r\n", read_timeout=2.0)
    assert status_and_json(out) == (
        413, {"error": f"deliverable is 1000000000 bytes, over the limit of {LIMIT}"})


def test_upload__expect_continue__100_only_when_acceptable(world: World) -> None:
    host, port = world.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=3) as s:
        s.sendall(b"POST /deliverables HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(DELIVERABLE))
        assert s.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(DELIVERABLE)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert status_and_json(out) == (201, {"hash": hex32(content_hash(DELIVERABLE)),
                                          "size": len(DELIVERABLE)})
    out = raw(world, b"POST /deliverables HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % (LIMIT + 1))
    assert b"100 Continue" not in out
    assert status_and_json(out)[0] == 413


def test_upload__no_content_length__411(world: World) -> None:
    out = raw(world, b"POST /deliverables HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_and_json(out) == (411, {"error": "Content-Length required"})
    # a chunked upload has no length to check before reading: refused the same way
    r = world.post("/deliverables", iter([DELIVERABLE]))  # type: ignore[arg-type]
    assert (r.status_code, r.json()) == (411, {"error": "Content-Length required"})
    assert world.store.blob(content_hash(DELIVERABLE)) is None


@pytest.mark.parametrize("value", [b"-1", b"abc", b"1e3", b"10, 10"])
def test_upload__malformed_content_length__400(world: World, value: bytes) -> None:
    out = raw(world, b"POST /deliverables HTTP/1.1\r\nHost: x\r\nContent-Length: " + value
              + b"\r\n\r\n")
    assert status_and_json(out) == (400, {"error": "invalid Content-Length"})


def test_upload__body_shorter_than_declared__400_and_nothing_stored(world: World) -> None:
    host, port = world.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=3) as s:
        s.sendall(b"POST /deliverables HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort")
        s.shutdown(socket.SHUT_WR)  # the client gives up mid-body
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    assert status_and_json(out) == (400, {"error": "body shorter than Content-Length"})
    assert world.store.blob(content_hash(b"short")) is None


@pytest.mark.parametrize("value", ["0x12", "zz", "ab" * 32, "0x" + "ab" * 32 + "00"])
def test_upload__malformed_hash_header__400_and_nothing_stored(world: World, value: str) -> None:
    r = world.post("/deliverables", DELIVERABLE, headers={"X-Content-Hash": value})
    assert (r.status_code, r.json()) == (400, {"error": REASON_HEADER_HASH})
    assert world.store.blob(content_hash(DELIVERABLE)) is None


def test_upload__path_and_header_disagree__400(world: World) -> None:
    h = content_hash(DELIVERABLE)
    r = world.post(f"/deliverables/{hex32(h)}", DELIVERABLE,
                   headers={"X-Content-Hash": hex32(content_hash(b"other"))})
    assert (r.status_code, r.json()) == (
        400, {"error": "X-Content-Hash differs from the hash in the path"})
    r = world.post("/deliverables/0x1234", DELIVERABLE)
    assert (r.status_code, r.json()) == (400, {"error": REASON_HASH})
    assert world.store.blob(h) is None


def test_upload__bytes_already_held_as_evidence__kept_apart(world: World) -> None:
    eh, _ = seed_evaluation(world.store)
    r = world.post("/deliverables", EVIDENCE)
    assert (r.status_code, r.json()) == (201, {"hash": hex32(eh), "size": len(EVIDENCE)})
    # blobs are keyed by (hash, kind): the upload shadows nothing
    assert world.get(f"/evidence/{hex32(eh)}").content == EVIDENCE
    assert world.get(f"/deliverables/{hex32(eh)}").content == EVIDENCE


def test_deliverable__unknown_or_other_kind__404(world: World) -> None:
    eh, _ = seed_evaluation(world.store)
    for h in (content_hash(b"never uploaded"), eh):
        r = world.get(f"/deliverables/{hex32(h)}")
        assert (r.status_code, r.json()) == (404, {"error": f"no deliverable {hex32(h)}"})


# -- routing, methods and protocol errors --------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/nope", "/health/", "/votes/", "/votes/7/extra",
                                  "/evidence", "/deliverables/a/b"])
def test_routing__unknown_path__404_json(world: World, path: str) -> None:
    r = world.get(path)
    assert (r.status_code, r.json()) == (404, {"error": "no such endpoint"})


@pytest.mark.parametrize("method,path,allow", [
    ("POST", "/health", "GET, HEAD"),
    ("DELETE", "/votes/7", "GET, HEAD"),
    ("PUT", "/deliverables", "POST"),
    ("GET", "/deliverables", "POST"),
    ("PUT", "/deliverables/0x" + "ab" * 32, "GET, HEAD, POST"),
])
def test_routing__wrong_method__405_with_allow(world: World, method: str, path: str,
                                               allow: str) -> None:
    r = requests.request(method, world.url + path, timeout=5)
    assert (r.status_code, r.json()) == (
        405, {"error": f"method {method} not allowed here (allowed: {allow})"})
    assert r.headers["Allow"] == allow


def test_routing__head__headers_without_body(world: World) -> None:
    r = requests.head(world.url + "/health", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(len(json.dumps({"status": "ok"})))
    assert r.content == b""


def test_protocol__unknown_method_and_bad_request_line__json_errors(world: World) -> None:
    code, doc = status_and_json(raw(world, b"BREW /health HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert (code, doc) == (501, {"error": "Unsupported method ('BREW')"})
    code, doc = status_and_json(raw(world, b"GET /health HTTP/x\r\n\r\n"))
    assert (code, doc) == (400, {"error": "Bad request version ('HTTP/x')"})
    code, doc = status_and_json(raw(world, b"GET /health HTTP/2.0\r\n\r\n"))
    assert (code, doc) == (505, {"error": "Invalid HTTP version (2.0)"})
    code, doc = status_and_json(raw(world, b"POST /deliverables\r\n\r\n"))
    assert (code, doc) == (400, {"error": "Bad HTTP/0.9 request type ('POST')"})
    code, doc = status_and_json(raw(world, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"))
    assert code == 414 and "error" in doc


# -- failures, logging, limits, lifecycle --------------------------------------------------------

def test_store_failure__503_storage_unavailable_without_internals(world: World) -> None:
    seed_vote(world.store)
    world.store.close()  # every query now raises StoreError
    for r in (world.get("/votes/7"), world.get(f"/evidence/{hex32(content_hash(EVIDENCE))}"),
              world.post("/deliverables", DELIVERABLE)):
        assert (r.status_code, r.json()) == (503, {"error": "storage unavailable"})
    assert 'pactbond_failures_total{kind="api_storage"} 3.0' in world.get("/metrics").text
    assert world.get("/health").status_code == 200  # alive, though not useful


def test_logging__debug_only_no_bodies_no_stderr(world: World, caplog: pytest.LogCaptureFixture,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    secret = b"agent-secret-payload-5b1f"
    with caplog.at_level(logging.DEBUG, logger="pactbond.oracle.api"):
        assert world.post("/deliverables", secret).status_code == 201
        assert world.get("/nope").status_code == 404
    records = [r for r in caplog.records if r.name == "pactbond.oracle.api"]
    assert any("POST /deliverables" in r.getMessage() and r.levelno == logging.DEBUG
               for r in records)
    assert all(secret.decode() not in r.getMessage() for r in records)
    assert capsys.readouterr().err == ""


def test_limits__silent_client_dropped_after_timeout(tmp_store: Store) -> None:
    store = tmp_store
    with Api(make_ctx(store, Metrics(), [(True, "")], set()), timeout=0.3) as api:
        host, port = api.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as s:
            t = time.monotonic()
            s.sendall(b"GET /health HTTP/1.1\r\n")  # ... and never finishes the headers
            assert s.recv(1024) == b""  # the server hung up
            assert time.monotonic() - t < 3
        assert requests.get(api.url + "/health", timeout=5).status_code == 200


def test_limits__connections_over_the_cap__503_then_served(tmp_store: Store) -> None:
    metrics = Metrics()
    with Api(make_ctx(tmp_store, metrics, [(True, "")], set()), max_connections=1) as api:
        host, port = api.url.removeprefix("http://").split(":")
        hog = socket.create_connection((host, int(port)), timeout=5)
        hog.sendall(b"GET /health HTTP/1.1\r\n")  # holds the only slot
        time.sleep(0.2)
        r = requests.get(api.url + "/health", timeout=5)
        assert (r.status_code, r.json()) == (503, {"error": "too many connections"})
        # counted by the refusing thread, which may finish just after the client has its 503
        for _ in range(100):
            if 'pactbond_failures_total{kind="api_busy"} 1.0' in metrics.render().decode():
                break
            time.sleep(0.01)
        assert 'pactbond_failures_total{kind="api_busy"} 1.0' in metrics.render().decode()
        hog.close()
        for _ in range(50):  # the slot frees once the server notices the hang-up
            r = requests.get(api.url + "/health", timeout=5)
            if r.status_code == 200:
                break
            time.sleep(0.05)
        assert r.status_code == 200


def test_lifecycle__stop_closes_the_port_quickly(tmp_store: Store) -> None:
    store = tmp_store
    api = Api(make_ctx(store, Metrics(), [(True, "")], set())).start()
    url = api.url
    host, port = url.removeprefix("http://").split(":")
    assert requests.get(url + "/health", timeout=5).status_code == 200
    t = time.monotonic()
    api.stop()
    assert time.monotonic() - t < 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=1).close()
    api.stop()  # idempotent
    with pytest.raises(ApiError, match="stopped"):
        api.start()


def test_lifecycle__port_in_use__api_error(world: World) -> None:
    port = int(world.url.rsplit(":", 1)[1])
    with pytest.raises(ApiError, match=f"cannot listen on 127.0.0.1:{port}"):
        Api(make_ctx(world.store, Metrics(), [(True, "")], set()), port=port)


def test_lifecycle__stop_without_start__releases_the_port(tmp_store: Store) -> None:
    store = tmp_store
    api = Api(make_ctx(store, Metrics(), [(True, "")], set()))
    port = int(api.url.rsplit(":", 1)[1])
    api.stop()
    again = Api(make_ctx(store, Metrics(), [(True, "")], set()), port=port)
    again.stop()


def test_http_client__keeps_no_connection_open(world: World) -> None:
    conn = http.client.HTTPConnection(world.url.removeprefix("http://"), timeout=5)
    conn.request("GET", "/health")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Connection") == "close"
    assert json.loads(resp.read()) == {"status": "ok"}
    conn.close()

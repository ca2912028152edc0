"""The oracle's HTTP API (standard library `http.server`, one thread per connection).

    GET  /health                       200 {"status": "ok"}: the process is alive
    GET  /ready                        200 {"ready": true} | 503 {"ready": false, "reason": ...}
    GET  /info                         200 {"member", "chain_id", "escrow", "max_deliverable_bytes"}
    GET  /metrics                      Prometheus text
    GET  /votes/{job_id}?round=0|1     this oracle's signed vote (round 0 by default)
    GET  /evidence/{0xhash}            an evidence packet (its JSON bytes)
    GET  /evidence/{0xhash}/reveal     its hidden reveal document, once the job has ended
    POST /deliverables[/{0xhash}]      raw bytes (X-Content-Hash optional): 201/200 {"hash", "size"}
    GET  /deliverables/{0xhash}        the bytes, for agents and peer oracles

Every error is JSON `{"error": reason}` (except /ready's documented body). Bounds against slow or
hostile clients: one request per connection (`Connection: close`, so an idle keep-alive cannot
hold a thread), a timeout on every socket read, a deadline on a whole upload, at most
`max_connections` connections served at once, and an upload refused on its Content-Length before
any of its body is read, so memory stays under max_connections x max_deliverable_bytes.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict

from pactbond.errors import PactbondError
from pactbond.oracle.metrics import Metrics
from pactbond.oracle.spec import content_hash, hex32
from pactbond.oracle.store import Store, StoreError

log = logging.getLogger("pactbond.oracle.api")

JSON = "application/json"
BYTES = "application/octet-stream"
# content-addressed bytes never change; everything else is live state
IMMUTABLE = "public, max-age=31536000, immutable"
NO_STORE = "no-store"

_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
# ASCII digits only: int() would also take "+1", "1_0", " 1" and non-ASCII digits
_UINT = re.compile(r"[0-9]{1,78}")
UINT256_MAX = 2**256 - 1
SQLITE_MAX = 2**63 - 1  # a job id above this cannot be in the store (nor be bound to SQLite)
# the slowest upload still waited for: 1 MiB gets 64 s on top of the socket timeout
MIN_UPLOAD_RATE = 16 * 1024  # bytes per second

REASON_JOB_ID = "job id must be a non-negative integer below 2**256"
REASON_ROUND = "round must be 0 or 1"
REASON_HASH = "not a 32-byte hex hash (0x followed by 64 hex digits)"
REASON_HEADER_HASH = "X-Content-Hash must be 0x followed by 64 hex digits"


class ApiError(PactbondError, RuntimeError):
    """The API cannot listen on its address (in use, not permitted, unknown host)."""


class _HttpError(PactbondError):
    """A request refused with `status` and `reason`; answered as {"error": reason}."""

    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


@dataclass
class ApiContext:
    store: Store
    metrics: Metrics
    ready: Callable[[], tuple[bool, str]]  # (ready?, why not)
    revealable: Callable[[int], bool]  # job id -> may its hidden reveal be published?
    max_deliverable_bytes: int
    member: str  # this oracle's address (checksummed)
    chain_id: int
    escrow: str
    max_pending_upload_bytes: int | None = None  # None: no bound (see OracleSettings)
    upload_ttl_s: int = 7 * 24 * 3600  # uploads older than this no longer count

    def quota_full(self, n: int) -> str | None:
        """Why an upload of n new bytes is refused now, or None."""
        if self.max_pending_upload_bytes is None:
            return None
        pending = self.store.pending_upload_bytes(self.upload_since())
        if pending + n <= self.max_pending_upload_bytes:
            return None
        return (f"upload quota full: {pending} bytes of deliverables await a vote here (limit "
                f"{self.max_pending_upload_bytes}); retry later, or give the submission a URI")

    def upload_since(self) -> int:
        return self.store.now() - self.upload_ttl_s


class VoteOut(BaseModel):
    """A signed vote as served to peers and agents (hashes and signature as 0x hex)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    job_id: int
    round: int
    member: str
    score_bps: int
    evidence_hash: str
    deliverable_hash: str
    spec_hash: str
    deadline: int
    signature: str
    chain_id: int
    escrow: str


class InfoOut(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    member: str
    chain_id: int
    escrow: str
    max_deliverable_bytes: int


class UploadOut(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    hash: str
    size: int


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str = JSON
    cache: str = NO_STORE
    headers: tuple[tuple[str, str], ...] = field(default=())


def _json(status: int, doc: dict[str, Any] | BaseModel) -> _Response:
    body = doc.model_dump_json() if isinstance(doc, BaseModel) else json.dumps(doc)
    return _Response(status, body.encode())


def _error(status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    return _Response(status, json.dumps({"error": reason}).encode(), headers=headers)


def _parse_hash(text: str, reason: str = REASON_HASH) -> bytes:
    if not _HASH.fullmatch(text):
        raise _HttpError(400, reason)
    return bytes.fromhex(text[2:])


def _parse_job_id(text: str) -> int:
    if not _UINT.fullmatch(text):
        raise _HttpError(400, REASON_JOB_ID)
    job_id = int(text)
    if job_id > UINT256_MAX:
        raise _HttpError(400, REASON_JOB_ID)
    return job_id


def _one(query: dict[str, list[str]], name: str, default: str) -> str:
    values = query.get(name, [default])
    if len(values) != 1:
        raise _HttpError(400, f"query parameter {name!r} given more than once")
    return values[0]


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client never blocks process exit

    def __init__(self, address: tuple[str, int], ctx: ApiContext, timeout: float,
                 max_connections: int, family: socket.AddressFamily) -> None:
        self.address_family = family
        self.ctx = ctx
        self.request_timeout = timeout
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._busy_logged = -60.0
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn (a reverse DNS lookup): not needed, can be slow
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            # full: answer at once rather than start an unbounded number of threads
            _refuse_busy(request)
            self.shutdown_request(request)
            self.ctx.metrics.failures.labels("api_busy").inc()
            now = time.monotonic()
            if now - self._busy_logged >= 60:  # once a minute, not once per refused client
                self._busy_logged = now
                log.warning("refusing connections: all %d slots busy", self.max_connections)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()  # the thread did not start
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # the default prints a traceback to stderr; a client hanging up is routine
        log.debug("connection from %s failed", client_address, exc_info=True)


def _refuse_busy(request: socket.socket) -> None:
    body = json.dumps({"error": "too many connections"}).encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: {JSON}\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")
    try:
        request.settimeout(1.0)
        request.sendall(head.encode() + body)
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.1 for `Expect: 100-continue` (an oversize upload is refused before it is sent);
    # every response still closes the connection
    protocol_version = "HTTP/1.1"
    server_version = "pactbond-oracle"

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def setup(self) -> None:
        super().setup()
        # every read and write on this connection: a silent client frees its thread
        self.connection.settimeout(self.server.request_timeout)
        self._expects_continue = False

    # -- stdlib hooks ----------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        # request lines and stdlib notices only (never bodies), at DEBUG: no stderr noise
        log.debug("%s " + format, self.address_string(), *args)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        # the stdlib's own refusals (bad request line, headers too long, unknown method) as JSON
        reason = message or self.responses.get(code, ("error",))[0]
        if self.request_version == "HTTP/0.9":
            # set when the request line was unparseable: still answer with a status line
            self.request_version = "HTTP/1.0"
        self._send(_error(code, reason))

    def handle_expect_100(self) -> bool:
        # answer 100 Continue only once the headers pass the checks (see _upload)
        self._expects_continue = True
        return True

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    # -- plumbing --------------------------------------------------------------------------------
    def _send(self, r: _Response) -> None:
        try:
            self.send_response(r.status)
            self.send_header("Content-Type", r.content_type)
            self.send_header("Content-Length", str(len(r.body)))
            self.send_header("Cache-Control", r.cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            for k, v in r.headers:
                self.send_header(k, v)
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(r.body)
            self.wfile.flush()
        except OSError as e:  # the client hung up or stopped reading
            log.debug("could not answer %s: %s", self.address_string(), e)
        self.close_connection = True

    def _dispatch(self) -> None:
        path, _, query = self.path.partition("?")
        try:
            r = self._route(path, query)
        except _HttpError as e:
            r = _error(e.status, e.reason, e.headers)
        except StoreError as e:
            # the reason stays in the log: clients learn only that storage is down
            log.warning("storage unavailable for %s %s: %s", self.command, path[:200], e)
            self.server.ctx.metrics.failures.labels("api_storage").inc()
            r = _error(503, "storage unavailable")
        except Exception:
            log.exception("internal error on %s %s", self.command, path[:200])
            r = _error(500, "internal error")
        self._send(r)

    def _route(self, path: str, query: str) -> _Response:
        allowed: list[str] = []
        for method, pattern, params, action in _ROUTES:
            m = pattern.fullmatch(path)
            if m is None:
                continue
            if method == self.command or (method == "GET" and self.command == "HEAD"):
                return action(self, m, _parse_query(query, params))
            allowed += [method, "HEAD"] if method == "GET" else [method]
        if allowed:
            allow = ", ".join(sorted(set(allowed)))
            raise _HttpError(405, f"method {self.command} not allowed here (allowed: {allow})",
                             (("Allow", allow),))
        raise _HttpError(404, "no such endpoint")

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding") is not None:
            # chunked bodies have no length to check up front: refused like a missing length
            raise _HttpError(411, "Content-Length required")
        values = self.headers.get_all("Content-Length") or []
        if not values:
            raise _HttpError(411, "Content-Length required")
        if len(values) != 1 or not re.fullmatch(r"[0-9]{1,20}", values[0].strip()):
            raise _HttpError(400, "invalid Content-Length")
        return int(values[0])

    def _read_body(self, n: int) -> bytes:
        """Exactly `n` bytes (n already checked against the limit), read in small pieces so a
        trickling client meets the upload deadline, not just the per-read timeout."""
        deadline = time.monotonic() + self.server.request_timeout + n / MIN_UPLOAD_RATE
        buf = bytearray()
        try:
            while len(buf) < n:
                if time.monotonic() > deadline:
                    raise _HttpError(408, "request body not received in time")
                chunk = self.rfile.read1(min(n - len(buf), 1 << 16))
                if not chunk:
                    raise _HttpError(400, "body shorter than Content-Length")
                buf += chunk
        except TimeoutError:
            raise _HttpError(408, "request body not received in time") from None
        return bytes(buf)

    # -- endpoints -------------------------------------------------------------------------------
    def _health(self, m: re.Match[str], q: dict[str, list[str]]) -> _Response:
        return _json(200, {"status": "ok"})

    def _ready(self, m: re.Match[str], q: dict[str, list[str]]) -> _Response:
        try:
            ok, why = self.server.ctx.ready()
        except Exception:
            log.warning("the readiness check failed", exc_info=True)
            ok, why = False, "readiness check failed"
        if ok:
            return _json(200, {"ready": True})
        return _json(503, {"ready": False, "reason": why or "not ready"})

    def _info(self, m: re.Match[str], q: dict[str, list[str]]) -> _Response:
        c = self.server.ctx
        return _json(200, InfoOut(member=c.member, chain_id=c.chain_id, escrow=c.escrow,
                                  max_deliverable_bytes=c.max_deliverable_bytes))

    def _metrics(self, m: re.Match[str], q: dict[str, list[str]]) -> _Response:
        return _Response(200, self.server.ctx.metrics.render(), CONTENT_TYPE_LATEST)

    def _vote(self, m: re.Match[str], q: dict[str, list[str]]) -> _Response:
        c = self.server.ctx
        job_id = _parse_job_id(m["job"])
        round_text = _one(q, "round", "0")
        if round_text not in ("0", "1"):
            raise _HttpError(400, REASON_ROUND)
        round_ = int(round_text)
        v = c.store.vote(job_id, round_) if job_id <= SQLITE_MAX else None
        if v is None:
            raise _HttpError(404, f"no vote for job {job_id} round {round_}")
        return _json(200, VoteOut(
            job_id=v.job_id, round=v.round, member=v.member, score_bps=v.score,
            evidence_hash=hex32(v.evidence_hash), deliverable_hash=hex32(v.deliverable_hash),
            spec_hash=hex32(v.spec_hash), deadline=v.deadline, signature="0x" + v.signature.hex(),
            chain_id=c.chain_id, escrow=c.escrow))

    def _evidence(self, m: re.Match[str], q: dict[str, list[str]]) -> _Response:
        h = _parse_hash(m["hash"])
        data = self.server.ctx.store.blob(h, "evidence")
        if data is None:
            raise _HttpError(404, f"no evidence {hex32(h)}")
        return _Response(200, data, JSON, IMMUTABLE)

    def _reveal(self, m: re.Match[str], q: dict[str, list[str]]) -> _Response:
        c = self.server.ctx
        h = _parse_hash(m["hash"])
        found = c.store.reveal_hash_for(h)
        if found is None:
            raise _HttpError(404, f"no reveal for evidence {hex32(h)}")
        job_id, reveal_hash = found
        try:
            release = c.revealable(job_id)
        except Exception:
            # fail closed: a hidden reference set is never published on a guess
            log.warning("cannot tell whether job %d has ended", job_id, exc_info=True)
            raise _HttpError(503, f"cannot tell whether job {job_id} has ended") from None
        if not release:
            raise _HttpError(403, f"reveal withheld until job {job_id} has ended")
        data = c.store.blob(reveal_hash, "reveal")
        if data is None:
            raise _HttpError(404, f"no reveal for evidence {hex32(h)}")
        return _Response(200, data, JSON, IMMUTABLE)

    def _deliverable(self, m: re.Match[str], q: dict[str, list[str]]) -> _Response:
        h = _parse_hash(m["hash"])
        data = self.server.ctx.store.blob(h, "deliverable")
        if data is None:
            raise _HttpError(404, f"no deliverable {hex32(h)}")
        return _Response(200, data, BYTES, IMMUTABLE)

    def _upload(self, m: re.Match[str], q: dict[str, list[str]]) -> _Response:
        c = self.server.ctx
        expected = _parse_hash(m["hash"]) if m.groupdict().get("hash") is not None else None
        named = self.headers.get_all("X-Content-Hash") or []
        if len(named) > 1:
            raise _HttpError(400, REASON_HEADER_HASH)
        if named:
            header_hash = _parse_hash(named[0].strip(), REASON_HEADER_HASH)
            if expected is not None and header_hash != expected:
                raise _HttpError(400, "X-Content-Hash differs from the hash in the path")
            expected = header_hash
        n = self._content_length()
        if n > c.max_deliverable_bytes:
            raise _HttpError(413, f"deliverable is {n} bytes, over the limit of "
                                  f"{c.max_deliverable_bytes}")
        known = expected is not None and c.store.blob(expected, "deliverable") is not None
        if not known and (full := c.quota_full(n)) is not None:
            raise _HttpError(507, full)  # before the body is sent
        if self._expects_continue:
            self.send_response_only(100)
            self.end_headers()
        body = self._read_body(n)
        h = content_hash(body)
        if expected is not None and h != expected:
            raise _HttpError(422, f"body hashes to {hex32(h)}, not {hex32(expected)}")
        out = UploadOut(hash=hex32(h), size=n)
        if c.store.blob(h, "deliverable") is not None:
            return _json(200, out)
        if c.max_pending_upload_bytes is None:
            c.store.put_blob(h, "deliverable", body)
        elif not c.store.put_upload(h, body, c.max_pending_upload_bytes, c.upload_since()):
            # uploads in flight together passed the first check: the write decides
            raise _HttpError(507, c.quota_full(n) or "upload quota full")
        log.info("deliverable %s stored (%d bytes)", hex32(h), n)
        return _json(201, out)


def _parse_query(query: str, allowed: frozenset[str]) -> dict[str, list[str]]:
    try:
        q = parse_qs(query, keep_blank_values=True, max_num_fields=8)
    except ValueError:
        raise _HttpError(400, "malformed query string") from None
    for name in q:
        if name not in allowed:
            raise _HttpError(400, f"unknown query parameter {name[:40]!r}")
    return q


_Action = Callable[[_Handler, re.Match[str], dict[str, list[str]]], _Response]
_NONE: frozenset[str] = frozenset()
_HEX = r"(?P<hash>[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], frozenset[str], _Action]] = [
    ("GET", re.compile(r"/health"), _NONE, _Handler._health),
    ("GET", re.compile(r"/ready"), _NONE, _Handler._ready),
    ("GET", re.compile(r"/info"), _NONE, _Handler._info),
    ("GET", re.compile(r"/metrics"), _NONE, _Handler._metrics),
    ("GET", re.compile(r"/votes/(?P<job>[^/]+)"), frozenset({"round"}), _Handler._vote),
    ("GET", re.compile(rf"/evidence/{_HEX}"), _NONE, _Handler._evidence),
    ("GET", re.compile(rf"/evidence/{_HEX}/reveal"), _NONE, _Handler._reveal),
    ("POST", re.compile(r"/deliverables"), _NONE, _Handler._upload),
    ("POST", re.compile(rf"/deliverables/{_HEX}"), _NONE, _Handler._upload),
    ("GET", re.compile(rf"/deliverables/{_HEX}"), _NONE, _Handler._deliverable),
]


class Api:
    """The HTTP API of one oracle, served from a daemon thread between start() and stop().

    It binds at construction, so `url` names the actual port (pass port=0 for a free one)."""

    def __init__(self, ctx: ApiContext, host: str = "127.0.0.1", port: int = 0, *,
                 timeout: float = 10.0, max_connections: int = 64) -> None:
        if timeout <= 0 or max_connections < 1 or ctx.max_deliverable_bytes < 0:
            raise ApiError("timeout and max_connections must be positive, "
                           "max_deliverable_bytes non-negative")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._server = _Server((host, port), ctx, timeout, max_connections, family)
        except OSError as e:
            raise ApiError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def ctx(self) -> ApiContext:
        return self._server.ctx

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        h = str(host)
        return f"http://[{h}]:{port}" if ":" in h else f"http://{h}:{port}"

    def start(self) -> Api:
        if self._stopped:
            raise ApiError("the API was stopped; make a new one")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                name="pactbond-oracle-api", daemon=True)
            self._thread.start()
            log.info("oracle API listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop accepting, close the listening socket and join the serving thread (≤ 2 s).
        Requests already being answered finish on their own daemon threads."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread is not None:
            self._server.shutdown()  # returns once serve_forever has left its loop
            self._thread.join(2.0)
            if self._thread.is_alive():
                log.warning("the API thread did not stop within 2 s")
        self._server.server_close()

    def __enter__(self) -> Api:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

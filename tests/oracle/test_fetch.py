"""Deliverable downloads are bounded in time: a server that drips bytes or never answers cannot
hold the oracle's tick (it used to, for as long as each read kept arriving within the timeout)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from pactbond.oracle.fetch import Fetcher

BODY = b"x" * 1000
STOP = threading.Event()


class Handler(BaseHTTPRequestHandler):
    hits: ClassVar[dict[str, int]] = {}

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        Handler.hits[self.path] = Handler.hits.get(self.path, 0) + 1
        if self.path == "/silent":  # accepts, never answers
            STOP.wait(30)
            return
        if self.path == "/stall":  # half the body, then nothing, connection open
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[:500])
            self.wfile.flush()
            STOP.wait(30)
            return
        if self.path == "/missing":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        drip = self.path.startswith("/drip")
        self.send_header("Content-Length", str(10**6 if drip else len(BODY)))
        self.end_headers()
        if self.path.startswith("/drip"):  # a byte every 0.2 s: every read arrives in time
            for _ in range(10**6):
                if STOP.wait(0.2):
                    return
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
            return
        self.wfile.write(BODY)


@pytest.fixture
def base() -> Iterator[str]:
    STOP.clear()
    Handler.hits = {}
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        STOP.set()
        srv.shutdown()
        srv.server_close()


def timed(f: Fetcher, url: str, limit: int = 10**6) -> tuple[object, float]:
    t0 = time.monotonic()
    got = f.get(url, limit)
    return got, time.monotonic() - t0


def test_fast_server__bytes_at_once(base: str) -> None:
    got, _ = timed(Fetcher(2.0), f"{base}/ok")
    assert got is not None and (got.data, got.error) == (BODY, None)  # type: ignore[attr-defined]


def test_not_200__no_bytes_no_error(base: str) -> None:
    got, _ = timed(Fetcher(2.0), f"{base}/missing")
    assert got is not None and (got.data, got.error) == (None, None)  # type: ignore[attr-defined]


def test_over_the_limit__refused(base: str) -> None:
    got, _ = timed(Fetcher(2.0), f"{base}/ok", limit=100)
    assert got is not None and got.error == "over 100 bytes"  # type: ignore[attr-defined]


def test_dripping_body__tick_waits_at_most_the_timeout_then_the_failure_is_remembered(
        base: str) -> None:
    f = Fetcher(1.0, total=1.0, retry_after=60)
    got, took = timed(f, f"{base}/drip")
    assert got is None and 0.9 <= took < 1.6  # still running: the tick moves on
    got, took = timed(f, f"{base}/drip")
    assert took < 0.2 and Handler.hits["/drip"] == 1  # no second download while one runs
    deadline = time.monotonic() + 5
    while (got := f.get(f"{base}/drip", 10**6)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert got is not None and got.error == "slower than 1 s in all"
    got, took = timed(f, f"{base}/drip")  # answered from memory, not fetched again
    assert got is not None and got.error == "slower than 1 s in all" and took < 0.1
    assert Handler.hits["/drip"] == 1 and f.in_flight() == 0


def test_silent_server__never_holds_the_tick(base: str) -> None:
    f = Fetcher(0.5, total=5.0)
    got, took = timed(f, f"{base}/silent")
    assert took < 1.0
    for _ in range(3):  # later ticks do not wait on it again; its failure is remembered
        time.sleep(0.3)
        got, took = timed(f, f"{base}/silent")
        assert took < 0.1
    assert got is not None and got.error == "ReadTimeout"  # type: ignore[attr-defined]
    assert Handler.hits["/silent"] == 1


def test_stalled_mid_body__a_remembered_failure_not_a_missing_file(base: str) -> None:
    """urllib3's read timeout mid-body is not a requests exception: it used to kill the thread
    and come back as "no bytes, no error", fetched again every tick."""
    f = Fetcher(0.5, total=5.0)
    deadline = time.monotonic() + 5
    while (got := f.get(f"{base}/stall", 10**6)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert got is not None and got.data is None and got.error == "ReadTimeoutError"
    assert f.get(f"{base}/stall", 10**6) == got and Handler.hits["/stall"] == 1


def test_same_url_other_limit__its_own_download(base: str) -> None:
    """A download and its failure belong to a (URL, limit): a job allowing fewer bytes never
    gets bytes fetched under another job's larger limit, nor another's "over" refusal."""
    f = Fetcher(2.0)
    small, big = f.get(f"{base}/ok", 100), f.get(f"{base}/ok", 10**6)
    assert small is not None and small.error == "over 100 bytes"
    assert big is not None and big.data == BODY
    assert Handler.hits["/ok"] == 2


def test_uncollected_answer__forgotten_after_retry_after(base: str) -> None:
    f = Fetcher(0.2, total=5.0, retry_after=0.5)
    assert f.get(f"{base}/drip", 10**6) is None  # started, never collected again
    STOP.set()  # the server ends the drip: the download finishes, nobody asks for it
    deadline = time.monotonic() + 5
    while f.in_flight() and time.monotonic() < deadline:
        f.get(f"{base}/ok", 10**6)  # any later call prunes
        time.sleep(0.1)
    assert f.in_flight() == 0


def test_library_document_urls__bounded_and_kept(base: str, tmp_path: Any) -> None:
    """Spec and data documents fetched from a base URL are read as they arrive, cut off past
    3 x the timeout (a dripping host held the tick), and kept in the first directory."""
    from pactbond.oracle.spec import Library, SpecError, content_hash

    lib = Library([tmp_path / "docs"], [f"{base}/drip"], timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(SpecError, match="no document with hash"):
        lib.get(content_hash(b"anything"))
    assert time.monotonic() - t0 < 3.0
    h = content_hash(BODY)
    lib = Library([tmp_path / "docs"], [f"{base}/doc"], timeout=2.0)
    assert lib.get(h) == BODY
    assert (tmp_path / "docs" / ("0x" + h.hex())).read_bytes() == BODY
    assert Handler.hits[f"/doc/0x{h.hex()}"] == 1
    assert lib.get(h) == BODY and Handler.hits[f"/doc/0x{h.hex()}"] == 1  # from the directory

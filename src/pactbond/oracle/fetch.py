"""Bounded downloads of deliverables for the (single-threaded) oracle tick.

A per-read timeout does not bound a download: a server that drips a byte every few seconds keeps
every read alive, and one such URL in a submission would hold the tick (votes, bumps,
confirmations) for weeks. So each GET runs in a daemon thread; the tick waits for it at most
`wait` seconds, then moves on and collects the answer on a later tick. A download (URL and size
limit) still running is never started twice, and one that takes longer than `total` seconds in
all is cut off. A failure is answered from memory for `retry_after` seconds, so a bad URL costs
the tick one wait, not one per tick; an answer nobody collects is forgotten after as long.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests
import urllib3

CHUNK = 65536


class _Fetch:
    """One download; the thread writes `result`/`error`, then sets `done`."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.done = threading.Event()
        self.result: bytes | None = None
        self.error: str | None = None
        self.ended = 0.0  # monotonic time `done` was set


@dataclass(frozen=True)
class Got:
    """A finished download: the bytes (None: the server answered other than 200), or why not."""

    data: bytes | None
    error: str | None = None


class Fetcher:
    def __init__(self, wait: float, total: float | None = None,
                 retry_after: float | None = None) -> None:
        self.wait = wait
        self.total = 12 * wait if total is None else total
        self.retry_after = 6 * wait if retry_after is None else retry_after
        self._inflight: dict[tuple[str, int], _Fetch] = {}
        self._failed: dict[tuple[str, int], tuple[float, Got]] = {}

    def get(self, url: str, limit: int) -> Got | None:
        """The finished download of `url` (at most `limit` bytes), waiting at most `wait`
        seconds since it started; None while it is still running."""
        key = (url, limit)
        now = time.monotonic()
        self._prune(now)
        failed = self._failed.get(key)
        if failed is not None:
            return failed[1]
        f = self._inflight.get(key)
        if f is None:
            f = self._inflight[key] = _Fetch(now)
            threading.Thread(target=self._run, args=(f, url, limit), daemon=True,
                             name="pactbond-fetch").start()
        f.done.wait(max(0.0, f.started + self.wait - time.monotonic()))
        if not f.done.is_set():
            return None
        del self._inflight[key]
        got = Got(f.result, f.error)
        if got.error is not None:
            self._failed[key] = (time.monotonic(), got)
        return got

    def in_flight(self) -> int:
        return len(self._inflight)

    def _prune(self, now: float) -> None:
        """Forget failures past `retry_after`, and finished downloads nobody collected for as
        long (a job that ended, a source skipped because another one answered)."""
        self._failed = {k: v for k, v in self._failed.items() if now - v[0] < self.retry_after}
        for k, f in list(self._inflight.items()):
            if f.done.is_set() and now - f.ended >= self.retry_after:
                del self._inflight[k]

    def _run(self, f: _Fetch, url: str, limit: int) -> None:
        try:
            f.result = download(url, limit, self.wait, self.total, f.started + self.total)
        except ValueError as e:
            f.error = str(e)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            # urllib3's own errors (a read timing out mid-body) are not requests' ones
            f.error = type(e).__name__
        finally:
            f.ended = time.monotonic()
            f.done.set()


def download(url: str, limit: int, read_timeout: float, total: float,
             deadline: float | None = None) -> bytes | None:
    """GET `url`: its body if 200 (None otherwise), read as it arrives; ValueError past `limit`
    bytes or `total` seconds (counted to the monotonic `deadline` if given)."""
    if deadline is None:
        deadline = time.monotonic() + total
    with requests.Session() as s:
        s.trust_env = False  # no proxy or netrc from the environment
        with s.get(url, timeout=read_timeout, stream=True) as r:
            if r.status_code != 200:
                return None
            body = bytearray()
            while True:
                # read1: what has arrived (up to CHUNK), not a wait for a full chunk
                chunk = r.raw.read1(CHUNK, decode_content=True)
                if not chunk:
                    return bytes(body)
                body += chunk
                if len(body) > limit:
                    raise ValueError(f"over {limit} bytes")
                if time.monotonic() > deadline:
                    raise ValueError(f"slower than {total:g} s in all")

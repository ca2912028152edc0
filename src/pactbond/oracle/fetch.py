"""Bounded downloads of deliverables for the (single-threaded) oracle tick.

A per-read timeout does not bound a download: a server that drips a byte every few seconds keeps
every read alive, and one such URL in a submission would hold the tick (votes, bumps,
confirmations) for weeks. So each GET runs in a daemon thread; the tick waits for it at most
`timeout` seconds, then moves on and collects the answer on a later tick. A URL whose download is
still running is never fetched twice at once, and a body that is slower than `timeout` in all is
cut off. A failed download is answered from memory for `retry_after` seconds, so a bad URL
costs the tick one wait, not one per tick.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests

CHUNK = 65536


class _Fetch:
    """One download in flight; the thread writes `result`/`error` and then sets `done`."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.done = threading.Event()
        self.result: bytes | None = None
        self.error: str | None = None


@dataclass(frozen=True)
class Got:
    """A finished download: the bytes (None: the server answered other than 200), or why not."""

    data: bytes | None
    error: str | None = None


class Fetcher:
    def __init__(self, timeout: float, retry_after: float | None = None) -> None:
        self.timeout = timeout
        self.retry_after = 6 * timeout if retry_after is None else retry_after
        self._inflight: dict[str, _Fetch] = {}
        self._failed: dict[str, tuple[float, Got]] = {}  # url -> (when, the failure)

    def get(self, url: str, limit: int) -> Got | None:
        """The finished download of `url` (at most `limit` bytes), waiting at most `timeout`
        seconds since it started; None while it is still running."""
        now = time.monotonic()
        if len(self._failed) > 256:  # bounded memory, however many URLs fail
            self._failed = {u: v for u, v in self._failed.items()
                            if now - v[0] < self.retry_after}
        failed = self._failed.get(url)
        if failed is not None:
            if now - failed[0] < self.retry_after:
                return failed[1]
            del self._failed[url]
        f = self._inflight.get(url)
        if f is None:
            f = self._inflight[url] = _Fetch(time.monotonic())
            threading.Thread(target=self._run, args=(f, url, limit), daemon=True,
                             name="pactbond-fetch").start()
        f.done.wait(max(0.0, f.started + self.timeout - time.monotonic()))
        if not f.done.is_set():
            return None
        del self._inflight[url]
        got = Got(f.result, f.error)
        if got.error is not None:
            self._failed[url] = (time.monotonic(), got)
        return got

    def in_flight(self) -> int:
        return len(self._inflight)

    def _run(self, f: _Fetch, url: str, limit: int) -> None:
        try:
            f.result = self._download(url, limit, f.started + self.timeout)
        except (requests.RequestException, ValueError, OSError) as e:
            f.error = str(e) if isinstance(e, ValueError) else type(e).__name__
        finally:
            f.done.set()

    def _download(self, url: str, limit: int, deadline: float) -> bytes | None:
        with requests.Session() as s:
            s.trust_env = False  # no proxy or netrc from the environment
            with s.get(url, timeout=self.timeout, stream=True) as r:
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
                        raise ValueError(f"slower than {self.timeout:g} s in all")

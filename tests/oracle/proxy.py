"""A loopback TCP proxy for node-fault tests: the oracle talks to anvil through it, and a test
can cut it (new connections refused, open ones closed: the node is down) or delay the node's
answers (the node is slower than the client's timeout). Threaded, stdlib only; stopped by the
test that started it."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from pactbond.devnet import HOST


class _Conn:
    """One client connection and its upstream connection."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        # seconds to hold the next response: set by the request that asks for it
        self.hold = 0.0
        self.closed = threading.Event()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


class Proxy:
    """127.0.0.1:<port> → 127.0.0.1:<upstream_port>.

    `cut()` closes the listening socket (connections are refused) and every open connection;
    `restore()` listens again on the same port. `delay(s, only=...)` holds each response for
    `s` seconds — only responses to requests whose bytes contain one of `only` if given (the
    request itself reaches the node at once, so a client that times out does not know whether
    it was done). Counters: `connections`, `delayed`.
    """

    def __init__(self, upstream_port: int, host: str = HOST) -> None:
        self.host = host
        self.upstream = (host, upstream_port)
        self.port = 0
        self.connections = 0
        self.delayed = 0
        self._delay = 0.0
        self._only: tuple[bytes, ...] = ()
        self._lock = threading.Lock()
        self._conns: set[_Conn] = set()
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Proxy:
        self._stopping.clear()
        self._listen()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.cut()
        for t in self._threads:
            t.join(timeout=2)
        self._threads = [t for t in self._threads if t.is_alive()]

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------
    def cut(self) -> None:
        """The node goes away: refuse new connections, close the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns = list(self._conns)
        if listener is not None:
            listener.close()
        for c in conns:
            c.close()

    def restore(self) -> None:
        """The node is back on the same address."""
        if self._listener is None and not self._stopping.is_set():
            self._listen()

    def delay(self, seconds: float, only: tuple[bytes, ...] | bytes = ()) -> None:
        """Hold responses `seconds` (0 ends it); `only`: just those to matching requests."""
        with self._lock:
            self._delay = seconds
            self._only = (only,) if isinstance(only, bytes) else tuple(only)

    # -- plumbing --------------------------------------------------------------------------
    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        t.start()
        self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _listen(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(128)
        s.settimeout(0.2)
        self.port = s.getsockname()[1]
        with self._lock:
            self._listener = s
        self._spawn(self._accept, s)

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set() and self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by cut()
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            conn = _Conn(client, upstream)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    conn.close()
                    return
                self._conns.add(conn)
                self.connections += 1
            self._spawn(self._requests, conn)
            self._spawn(self._responses, conn)

    def _requests(self, conn: _Conn) -> None:
        """client → node, marking the connection's next response to be held if asked."""
        try:
            while True:
                data = conn.client.recv(65536)
                if not data:
                    break
                with self._lock:
                    d, only = self._delay, self._only
                # a request's bytes may come in several chunks: any matching one counts
                if d > 0 and (not only or any(m in data for m in only)):
                    conn.hold = max(conn.hold, d)
                conn.upstream.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(conn)

    def _responses(self, conn: _Conn) -> None:
        """node → client, holding a marked response first."""
        try:
            while True:
                data = conn.upstream.recv(65536)
                if not data:
                    break
                if conn.hold > 0:
                    hold, conn.hold = conn.hold, 0.0
                    with self._lock:
                        self.delayed += 1
                    if conn.closed.wait(hold) or self._stopping.is_set():
                        break
                conn.client.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        conn.close()
        with self._lock:
            self._conns.discard(conn)

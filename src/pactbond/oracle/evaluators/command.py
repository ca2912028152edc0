"""A test suite run over submitted code in a sandboxed subprocess ("command", version "1").

Spec params::

    {"suite": "0x<keccak-256 of the suite document>",   # required
     "timeout_s": 10,            # wall clock for the whole run, 1..120
     "cpu_s": 10,                # CPU seconds per process (RLIMIT_CPU), 1..120; default timeout_s
     "memory_mb": 256,           # address space per process (RLIMIT_AS), 32..8192
     "max_output_bytes": 65536,  # stdout+stderr kept; beyond it the run is killed, 1K..16M
     "max_file_mb": 8,           # largest file the run may write (RLIMIT_FSIZE), 1..1024
     "max_procs": 32}            # processes/threads of the run (RLIMIT_NPROC), 1..1024

Suite document (loaded by hash from the library)::

    {"files": {"run_tests.py": "...", "data/case1.json": "..."},   # written into the scratch dir
     "argv": ["python3", "run_tests.py"],                        # run in the scratch dir
     "tests": ["add_small", "add_negative", ...]}                # every test the runner reports

Deliverable (UTF-8 JSON)::

    {"files": {"solution.py": "def add(a, b): ...", "pkg/util.py": "..."}}

Paths are relative POSIX paths (no leading "/", no "." / ".." / empty parts, no backslash, no
NUL); a deliverable path equal to a suite path, or a file where the other side has a directory,
is refused. A refused or unparseable deliverable scores 0 with a check named "deliverable".
File contents are text (UTF-8).

Protocol. The runner reads one line from stdin: a per-run random token. It reports each test
as one line on stdout (or stderr)::

    <token> PASS <test-name>
    <token> FAIL <test-name> [reason...]

Lines not starting with the token are ordinary output. A test passes when it is reported
exactly once, as PASS; unreported, failed or twice-reported tests fail, and names the suite
does not declare are ignored. Score = floor(10,000 x passed / declared tests), whatever the exit
code; a runner that reports nothing scores 0. A run killed at the timeout or for too much output
keeps the results reported before. The token keeps code that merely prints "PASS ..." from
counting, but code running *inside* the runner's process can find the token; a suite that must
resist forged reports runs each test in a child process started with stdin closed.

Sandbox. A fresh scratch directory (under the service's scratch root, removed afterwards) is
the run's cwd, HOME and TMPDIR; the environment is only PATH=/usr/bin:/bin, HOME, TMPDIR,
LANG=C.UTF-8 and PYTHONDONTWRITEBYTECODE=1; the limits above are rlimits of every process
(plus no core files and 256 open files); the run is its own session and process group, killed
as a whole at the end. Where the platform allows (Linux network namespaces), the run has no
network at all, not even loopback: `outputs.network_isolated` says whether it did. When the
service runs as root, the run switches to a fresh unprivileged uid (so it cannot read the
service's keys, and RLIMIT_NPROC bounds it), every process of that uid is killed afterwards,
and files it left in /tmp, /var/tmp or /dev/shm are removed; the suite and deliverable files
are read-only to it, it may create files in the scratch directory. The scratch root's parents
must then be searchable by other users (o+x), e.g. /tmp. As another user the agent's code
would run as the service's own user (its keystore, database and environment readable), so the
evaluator refuses unless the operator sets PACTBOND_COMMAND_UNSANDBOXED=1 for a host it can
lose (the demo does): limits still apply and what remains in the run's session or namespaces
is killed, but a process that leaves both can survive the run (`outputs.sandbox_user` false).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import resource
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pactbond.oracle.evaluators.base import (
    Check,
    Context,
    EvaluatorError,
    MalformedDeliverableError,
    Outcome,
    clip,
    evaluation_params,
    malformed,
    parse_json,
    parse_params,
    ratio_bps,
)
from pactbond.oracle.spec import SpecError, parse_hash

SAFE_PATH = "/usr/bin:/bin"
# set to 1 by an operator whose host may be lost: agent code then runs as the service's user
UNSANDBOXED_ENV = "PACTBOND_COMMAND_UNSANDBOXED"
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MAX_FILES = 1000
MAX_CHECKS = 500
LOG_TAIL = 2000  # characters of output kept in the evidence
EXIT_GRACE_S = 0.2  # after the runner exits, how long its leftovers may hold the pipe open
TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108 - swept for files the run left
_TEST_NAME = re.compile(r"\S{1,200}")


class CommandParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    suite: str
    timeout_s: Annotated[int, Field(ge=1, le=120)] = 10
    cpu_s: Annotated[int, Field(ge=1, le=120)] | None = None
    memory_mb: Annotated[int, Field(ge=32, le=8192)] = 256
    max_output_bytes: Annotated[int, Field(ge=1024, le=16 * 2**20)] = 64 * 1024
    max_file_mb: Annotated[int, Field(ge=1, le=1024)] = 8
    max_procs: Annotated[int, Field(ge=1, le=1024)] = 32

    @field_validator("suite")
    @classmethod
    def _hash(cls, v: str) -> str:
        try:
            parse_hash(v)
        except SpecError as e:
            raise ValueError(str(e)) from None
        return v


def check_relpath(path: str) -> str:
    """'' when `path` is a safe relative POSIX path, else why not."""
    # bytes, not characters: 1,024 four-byte characters passed and hit ENAMETOOLONG later,
    # which read as the evaluator's own failure instead of a malformed deliverable
    if not path or len(path.encode()) > 1024:
        return "empty or longer than 1024 bytes"
    if "\x00" in path or "\\" in path:
        return "contains NUL or a backslash"
    if path.startswith("/"):
        return "is absolute"
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "has an empty, '.' or '..' part"
    if any(len(p.encode()) > 255 for p in parts):
        return "has a part longer than 255 bytes"
    return ""


class Suite(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    files: dict[str, str] = {}
    argv: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=64)]
    tests: Annotated[list[str], Field(min_length=1, max_length=10_000)]

    @field_validator("files")
    @classmethod
    def _paths(cls, v: dict[str, str]) -> dict[str, str]:
        for path in v:
            if why := check_relpath(path):
                raise ValueError(f"file path {path!r} {why}")
        return v

    @field_validator("argv")
    @classmethod
    def _argv(cls, v: list[str]) -> list[str]:
        if any("\x00" in a for a in v):
            raise ValueError("argv contains NUL")
        return v

    @field_validator("tests")
    @classmethod
    def _tests(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("test names repeat")
        for t in v:
            if not _TEST_NAME.fullmatch(t):
                raise ValueError(f"test name {t[:40]!r} is empty, has whitespace or is too long")
        return v


# --- the sandbox -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxSupport:
    """What this host lets the sandbox do; probed once per process."""

    root: bool  # running as root: the run must switch to an unprivileged uid
    drop_user: bool  # switching uid works
    net_isolated: bool  # a new network namespace works
    notes: str = ""


@dataclass
class RunResult:
    output: bytes
    token: str  # set by CommandEvaluator._run
    exit_code: int | None  # None: killed by us before it exited
    timed_out: bool
    capped: bool


def _unshare_fn() -> Callable[[int], int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).unshare
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def _proc_uids(live: bool = False) -> Iterator[tuple[int, int, int]]:
    """(pid, real uid, session id) of every visible process (`live`: not zombies, which
    are already dead and wait for a parent that may never reap them)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as f:
                status = f.read()
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                st = f.read()
        except OSError:
            continue
        m = re.search(rb"^Uid:\s+(\d+)", status, re.M)
        # stat: "pid (comm) state ppid pgrp session ..."; comm may contain spaces or ')'
        fields = st[st.rfind(b")") + 2:].split()
        if m and len(fields) > 3 and not (live and fields[0] == b"Z"):
            yield int(entry.name), int(m.group(1)), int(fields[3])


def _pick_uid() -> int:
    """A uid no account or process uses, from the upper part of this namespace's uid map."""
    ranges: list[tuple[int, int]] = []
    try:
        with open("/proc/self/uid_map") as f:
            for line in f:
                inside, _outside, count = (int(x) for x in line.split())
                ranges.append((inside, count))
    except (OSError, ValueError):
        ranges = [(0, 65536)]
    start, count = max(ranges, key=lambda r: r[1])
    lo, hi = max(start + 1000, 10_000), min(start + count - 3, 2_000_000_000)
    if hi - lo < 1000:
        raise EvaluatorError("command: no free uid range for the sandbox user")
    lo += (hi - lo) // 2
    taken = {u for _, u, _ in _proc_uids()}
    with contextlib.suppress(OSError), open("/etc/passwd") as f:
        taken |= {int(x.split(":")[2]) for x in f if x.count(":") >= 3 and
                  x.split(":")[2].isdigit()}
    for _ in range(100):
        uid = lo + secrets.randbelow(hi - lo)
        if uid not in taken and uid not in (65534, 65535):
            return uid
    raise EvaluatorError("command: could not pick a free uid for the sandbox user")


def _preexec(limits: list[tuple[int, tuple[int, int]]], unshare_flags: int,
             uid: int | None) -> Callable[[], None]:
    """The child's set-up between fork and exec: limits, namespaces, then the uid switch
    (last: unsharing the network namespace needs the privileges the switch drops)."""
    unshare = _unshare_fn() if unshare_flags else None  # resolved before the fork

    def setup() -> None:
        for res, lim in limits:
            resource.setrlimit(res, lim)
        if unshare_flags and (unshare is None or unshare(unshare_flags) != 0):
            raise OSError(ctypes.get_errno(), "unshare failed")
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            if os.getuid() != uid or os.geteuid() != uid:  # never run agent code as root
                raise OSError("uid switch did not take")

    return setup


def _probe(unshare_flags: int, uid: int | None) -> str:
    """'' when a child set up this way can exec, else the error."""
    true = shutil.which("true", path=SAFE_PATH)
    if true is None:
        return "no `true` on PATH"
    try:
        subprocess.run(  # noqa: S603 - fixed argv
            [true], env={"PATH": SAFE_PATH}, cwd="/", check=True, timeout=10,
            preexec_fn=_preexec([], unshare_flags, uid),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return str(e) or type(e).__name__
    return ""


@functools.cache
def sandbox_support() -> SandboxSupport:
    """Probe once what the host allows (cached for the process)."""
    root = os.geteuid() == 0
    notes = []
    drop = False
    if root:
        err = _probe(0, _pick_uid())
        drop = not err
        if err:
            notes.append(f"uid switch: {err}")
    flags = CLONE_NEWNET if root else CLONE_NEWUSER | CLONE_NEWNET
    err = _probe(flags, None)
    if err:
        notes.append(f"network namespace: {err}")
    return SandboxSupport(root=root, drop_user=drop, net_isolated=not err, notes="; ".join(notes))


def _limits(p: CommandParams, user_mode: bool) -> list[tuple[int, tuple[int, int]]]:
    cpu = p.cpu_s or p.timeout_s
    procs = p.max_procs
    if not user_mode:
        # RLIMIT_NPROC counts all processes of the real uid: leave room for the existing ones
        me = os.getuid()
        procs += sum(1 for _, u, _ in _proc_uids() if u == me)
    want = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL at the hard
        (resource.RLIMIT_AS, p.memory_mb * 2**20, p.memory_mb * 2**20),
        (resource.RLIMIT_FSIZE, p.max_file_mb * 2**20, p.max_file_mb * 2**20),
        (resource.RLIMIT_NPROC, procs, procs),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_NOFILE, 256, 256),
    ]
    out = []
    for res, soft, hard in want:
        _, cur_hard = resource.getrlimit(res)
        if cur_hard != resource.RLIM_INFINITY:  # never ask for more than we have
            soft, hard = min(soft, cur_hard), min(hard, cur_hard)
        out.append((res, (soft, hard)))
    return out


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid` at once: a child switched to that uid calls kill(-1), which
    the kernel applies atomically with respect to fork (no escape by forking faster)."""
    if uid <= 0:
        raise EvaluatorError("command: refusing to sweep uid 0")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            if os.getuid() == uid and os.geteuid() == uid:
                os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _namespaces(pid: int | str) -> tuple[str, str]:
    """(user namespace, network namespace) of a process, '' where unreadable."""
    out = []
    for ns in ("user", "net"):
        try:
            out.append(os.readlink(f"/proc/{pid}/ns/{ns}"))
        except OSError:
            out.append("")
    return out[0], out[1]


def _kill_leftovers(sid: int, run_ns: tuple[str, str]) -> None:
    """Without a uid of our own: kill what is still in the run's session or in the namespaces
    made for it (which a process leaving the session with setsid() still is in). Repeated
    until nothing is found, as survivors may fork meanwhile (RLIMIT_NPROC bounds them)."""
    own_ns = _namespaces("self")
    # only namespaces that are the run's own: ours would match every process we have
    mine = {n for n, o in zip(run_ns, own_ns, strict=True) if n and n != o}
    me = os.getpid()
    for _ in range(50):
        found = [pid for pid, _, s in _proc_uids(live=True) if pid != me and
                 (s == sid or (mine and not mine.isdisjoint(_namespaces(pid))))]
        if not found:
            return
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _wait_gone(uid: int, limit_s: float = 2.0) -> bool:
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if not any(u == uid for _, u, _ in _proc_uids(live=True)):
            return True
        time.sleep(0.01)
    return False


def _sweep_temp(uid: int) -> None:
    """Remove what the run's uid left in the shared temp directories."""
    for d in TEMP_DIRS:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                if e.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    os.unlink(e.path)
            except OSError:
                continue


def _rmtree(path: str) -> None:
    def retry(func: Callable[..., Any], p: str, _exc: Any) -> None:
        # a directory the run made unreadable (chmod 000) still goes
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)

    for _ in range(3):
        shutil.rmtree(path, onerror=retry)
        if not os.path.lexists(path):
            return
        time.sleep(0.05)
    raise EvaluatorError(f"command: could not remove the scratch directory {path}")


def _searchable(path: str) -> bool:
    p = os.path.realpath(path)
    while True:
        if not os.stat(p).st_mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(p)
        if parent == p:
            return True
        p = parent


def _read_capped(proc: subprocess.Popen[bytes], timeout_s: int, cap: int) -> RunResult:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    deadline = time.monotonic() + timeout_s
    buf = bytearray()
    timed_out = capped = False
    exited_at: float | None = None
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > EXIT_GRACE_S:
                break  # leftovers hold the pipe open: they are killed below
            if now >= deadline:
                timed_out = exited_at is None
                break
            if not sel.select(timeout=min(deadline - now, 0.05)):
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:  # EOF: the runner closed its output; give it until the deadline
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    timed_out = True
                break
            buf += chunk
            if len(buf) > cap:
                capped = True
                del buf[cap:]
                break
    code = proc.poll()
    return RunResult(output=bytes(buf), token="", exit_code=code, timed_out=timed_out,
                     capped=capped)


def _write_files(root: str, files: Mapping[str, str]) -> None:
    for rel, content in files.items():
        path = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode())


def _conflicts(suite: Mapping[str, str], mine: Mapping[str, str]) -> str:
    """'' when the deliverable's files fit next to the suite's, else why not."""
    def dirs(paths: Iterable[str]) -> set[str]:
        return {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}

    for path in mine:
        if path in suite:
            return f"{path!r} is a suite file"
    all_dirs = dirs(suite) | dirs(mine)
    for path in list(suite) + list(mine):
        if path in all_dirs:
            return f"{path!r} is both a file and a directory"
    return ""


def _deliverable_files(data: bytes) -> dict[str, str]:
    doc = parse_json(data)
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict) or not files:
        raise MalformedDeliverableError('deliverable is not {"files": {"<path>": "<text>", ...}}')
    if len(files) > MAX_FILES:
        raise MalformedDeliverableError(f"more than {MAX_FILES} files")
    for path, content in files.items():
        if why := check_relpath(path):
            raise MalformedDeliverableError(f"file path {clip(path, 80)!r} {why}")
        if not isinstance(content, str):
            raise MalformedDeliverableError(f"file {clip(path, 80)!r} is not a string")
    return files


class CommandEvaluator:
    """Runs the spec's test suite over the submitted files; score = pass fraction."""

    name: ClassVar[str] = "command"
    version: ClassVar[str] = "1"
    deterministic: ClassVar[bool] = True

    def check_params(self, params: Mapping[str, Any]) -> None:
        parse_params(CommandParams, params, self.name)

    def _suite(self, ctx: Context, ref: str) -> Suite:
        try:
            doc = parse_json(ctx.load(parse_hash(ref)), "suite")
            return Suite.model_validate(doc)
        except (SpecError, MalformedDeliverableError) as e:
            raise EvaluatorError(f"command: cannot load the suite {ref}: {e}") from None
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise EvaluatorError(f"command: suite {ref} is malformed: {where}: {first['msg']}") \
                from None

    def evaluate(self, ctx: Context) -> Outcome:
        p = evaluation_params(CommandParams, ctx.params, self.name)
        suite = self._suite(ctx, p.suite)
        support = sandbox_support()
        base_outputs = {"network_isolated": support.net_isolated,
                        "sandbox_user": support.drop_user, "tests": len(suite.tests)}
        try:
            files = _deliverable_files(ctx.deliverable)
        except MalformedDeliverableError as e:
            return malformed(str(e), base_outputs)
        if why := _conflicts(suite.files, files):
            return malformed(f"deliverable refused: {why}", base_outputs)
        if support.root and not support.drop_user:
            raise EvaluatorError("command: running as root and cannot switch to an unprivileged "
                                 f"uid ({support.notes}); refusing to run agent code as root")
        if not support.root and os.environ.get(UNSANDBOXED_ENV) != "1":
            # the agent's code would run as this service's own user: it could read the
            # keystore, the database and the service's environment, and signal the service
            raise EvaluatorError(
                "command: not running as root, so agent code would run as this service's own "
                "user (keystore, database and environment readable); refusing. Run the oracle "
                f"as root (each run gets its own unprivileged uid) or set {UNSANDBOXED_ENV}=1 "
                "on a host you can lose")

        root_dir = ctx.scratch_root or tempfile.gettempdir()
        uid = _pick_uid() if support.drop_user else None
        if uid is not None and not _searchable(root_dir):
            raise EvaluatorError(f"command: scratch root {root_dir} is not searchable by other "
                                 "users (o+x on every parent); the sandbox user cannot reach it")
        scratch = tempfile.mkdtemp(prefix="pactbond-run-", dir=root_dir)
        try:
            _write_files(scratch, suite.files)
            _write_files(scratch, files)
            if uid is not None:
                # root owns the scratch dir and the files; the run's group may add files next
                # to them, and the sticky bit keeps it from replacing the suite's
                os.chown(scratch, 0, uid)
                os.chmod(scratch, 0o1770)  # noqa: S103 - group = the run's own gid
            run = self._run(p, suite, scratch, uid, support)
        finally:
            if uid is not None:
                _kill_uid(uid)
                gone = _wait_gone(uid)
                _sweep_temp(uid)
            _rmtree(scratch)
        if uid is not None and not gone:
            raise EvaluatorError(f"command: processes of uid {uid} survived the run's end")
        return self._grade(suite, run, base_outputs)

    def _run(self, p: CommandParams, suite: Suite, scratch: str, uid: int | None,
             support: SandboxSupport) -> RunResult:
        token = secrets.token_hex(16)
        # PYTHONNOUSERSITE: a deliverable file .local/lib/python3.X/site-packages/x.pth under
        # HOME would otherwise run inside the runner, before it reads the report token
        env = {"PATH": SAFE_PATH, "HOME": scratch, "TMPDIR": scratch, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"}
        flags = 0
        if support.net_isolated:
            flags = CLONE_NEWNET if support.root else CLONE_NEWUSER | CLONE_NEWNET
        try:
            proc = subprocess.Popen(  # noqa: S603 - the argv is the spec's, the env is scrubbed
                suite.argv, cwd=scratch, env=env, start_new_session=True, close_fds=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                preexec_fn=_preexec(_limits(p, uid is not None), flags, uid),
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise EvaluatorError(f"command: cannot start {suite.argv[0]!r}: {e}") from None
        run_ns = _namespaces(proc.pid) if uid is None else ("", "")  # read while it is alive
        try:
            assert proc.stdin is not None
            with contextlib.suppress(OSError):  # the runner may exit without reading
                proc.stdin.write(token.encode() + b"\n")
                proc.stdin.close()
            run = _read_capped(proc, p.timeout_s, p.max_output_bytes)
        finally:
            with contextlib.suppress(OSError):  # the whole group, whether or not it exited
                os.killpg(proc.pid, signal.SIGKILL)
            if uid is None:
                _kill_leftovers(proc.pid, run_ns)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        run.token = token
        # the scratch path is random: keep it out of the evidence so reruns agree
        run.output = run.output.replace(scratch.encode(), b"<scratch>")
        return run

    def _grade(self, suite: Suite, run: RunResult, outputs: dict[str, Any]) -> Outcome:
        reports: dict[str, list[tuple[str, str]]] = {}
        declared = set(suite.tests)
        unknown = 0
        prefix = run.token.encode() + b" "
        for raw in run.output.splitlines():
            if not run.token or not raw.startswith(prefix):
                continue
            parts = raw[len(prefix):].decode("utf-8", errors="replace").split(" ", 2)
            if len(parts) < 2 or parts[0] not in ("PASS", "FAIL") or parts[1] not in declared:
                unknown += 1
                continue
            reports.setdefault(parts[1], []).append((parts[0], parts[2] if len(parts) > 2 else ""))

        if run.timed_out:
            how = "killed at the timeout"
        elif run.capped:
            how = "killed: output over the limit"
        elif run.exit_code is None:
            how = "killed"
        elif run.exit_code < 0:
            how = f"killed by signal {-run.exit_code}"
        else:
            how = f"exit code {run.exit_code}"
        checks = [Check(name="run", passed=run.exit_code == 0 and not run.capped, detail=how)]
        passed = 0
        for t in suite.tests:
            got = reports.get(t, [])
            ok = len(got) == 1 and got[0][0] == "PASS"
            passed += ok
            if not got:
                detail = "not reported"
            elif len(got) > 1:
                detail = f"reported {len(got)} times"
            else:
                detail = "passed" if ok else clip(got[0][1] or "failed")
            checks.append(Check(name=t, passed=ok, detail=detail))
        outputs = {
            **outputs,
            "passed": passed,
            "exit_code": run.exit_code,
            "timed_out": run.timed_out,
            "output_capped": run.capped,
            "unknown_reports": unknown,
            "checks_capped": len(checks) > MAX_CHECKS,
            # the token is a secret only during the run; keep it out of the evidence anyway
            "log_tail": run.output.replace(run.token.encode(), b"<token>")
            .decode("utf-8", errors="replace")[-LOG_TAIL:],
        }
        return Outcome(score_bps=ratio_bps(passed, len(suite.tests)), checks=checks[:MAX_CHECKS],
                       outputs=outputs)

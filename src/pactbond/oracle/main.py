"""Process wiring for `pactbond oracle run --config FILE`: settings, wallet, node, store,
evaluators, HTTP API, JSON logs, signals. Start-up refusals exit non-zero with one line."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from pactbond.client import Pactbond
from pactbond.errors import PactbondError
from pactbond.oracle.api import Api, ApiContext
from pactbond.oracle.config import OracleSettings
from pactbond.oracle.evaluators import registry
from pactbond.oracle.evaluators.base import Evaluator
from pactbond.oracle.service import Oracle, StartupError, wall_clock
from pactbond.oracle.spec import Library, SpecError
from pactbond.oracle.store import Store
from pactbond.wallets import KeyWallet, Wallet

log = logging.getLogger("pactbond.oracle")
SHUTDOWN_LIMIT = 9.0  # seconds from SIGTERM to exit, whatever is in progress


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 3), "level": record.levelname.lower(),
            "logger": record.name, "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            doc["error"] = record.exc_info[0].__name__
        return json.dumps(doc, default=str)


def setup_logging(level: str) -> None:
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [h]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "web3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def open_wallet(cfg: OracleSettings) -> Wallet:
    """The signer: an encrypted keystore (password from an env var or a file; a service never
    prompts) or a key in an environment variable."""
    if cfg.keystore is not None:
        password: str | None = None
        if cfg.password_file is not None:
            try:
                password = cfg.password_file.read_text().rstrip("\n")
            except OSError as e:
                raise StartupError(f"cannot read password_file: {e.strerror}") from None
        elif cfg.password_env:
            password = os.environ.get(cfg.password_env)
            if password is None:
                raise StartupError(f"environment variable {cfg.password_env} is not set")
        if password is None:
            raise StartupError("keystore needs password_env or password_file")
        return KeyWallet.from_keystore(cfg.keystore, password=password)
    if cfg.key_env:
        return KeyWallet.from_env(cfg.key_env)
    raise StartupError("no signer: set keystore (+ password_env/password_file) or key_env")


def plugin_loader(cfg: OracleSettings) -> Any:
    """Evaluators by name, with the config's overrides ("module:Class") first."""
    cache: dict[str, Evaluator] = {}

    def get(name: str) -> Evaluator:
        if name not in cache:
            target = cfg.evaluator_overrides.get(name)
            if target:
                import importlib

                mod, _, cls = target.partition(":")
                try:
                    cache[name] = getattr(importlib.import_module(mod), cls)()
                except (ImportError, AttributeError) as e:
                    raise SpecError(f"evaluator override {target!r}: {e}") from None
            else:
                cache[name] = registry.get(name)
        return cache[name]

    return get


def build(cfg: OracleSettings) -> tuple[Oracle, Api]:
    wallet = open_wallet(cfg)
    # the service retries by itself (backing off): web3's own retries would multiply timeouts
    pb = Pactbond.connect(cfg.rpc_url, cfg.manifest, wallet, timeout=cfg.rpc_timeout,
                          retries=False)
    store = Store(cfg.db, clock=wall_clock)
    oracle = Oracle(cfg, pb, store, Library(cfg.documents, cfg.document_urls),
                    plugin_loader(cfg))
    oracle.check_membership()
    # the API reads and stores uploads on a connection of its own: a write lock held elsewhere
    # (the service loop mid-transaction, a backup) delays its requests only by SQLite's own
    # locking, which WAL spares readers, not by the service connection's lock
    api = Api(ApiContext(
        store=Store(cfg.db, clock=wall_clock), metrics=oracle.metrics, ready=oracle.ready,
        revealable=oracle.revealable,
        max_deliverable_bytes=cfg.max_deliverable_bytes,
        max_pending_upload_bytes=cfg.max_pending_upload_bytes, upload_ttl_s=cfg.upload_ttl_s,
        member=oracle.me,
        chain_id=pb.chain_id, escrow=pb.escrow.address,
    ), cfg.http.host, cfg.http.port)
    return oracle, api


def run(config: str | Path | None) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    try:
        cfg = OracleSettings.load(config)
    except PactbondError as e:
        print(f"pactbond oracle: {e}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level)
    try:
        oracle, api = build(cfg)
        api.start()
    except (PactbondError, OSError) as e:
        print(f"pactbond oracle: refused to start: {e}", file=sys.stderr)
        return 1

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"fields": {"signal": signal.Signals(signum).name}})
        oracle.stopping.set()

        def watchdog() -> None:
            time.sleep(SHUTDOWN_LIMIT)
            log.error("shutdown took too long: exiting now")
            os._exit(1)

        threading.Thread(target=watchdog, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("oracle started", extra={"fields": {
        "member": oracle.me, "chain_id": oracle.pb.chain_id, "api": api.url,
        "committees": cfg.committees}})
    # the API's URL on stdout, one line, so a supervisor (or a test) knows where it listens
    print(json.dumps({"api": api.url, "member": oracle.me}), flush=True)
    try:
        oracle.run()
    finally:
        api.stop()
        api.ctx.store.close()
        oracle.store.close()
        log.info("oracle stopped")
    return 0

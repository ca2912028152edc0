"""Oracle settings: a YAML/JSON file, overridden by `PACTBOND_` environment variables.

    rpc_url: http://127.0.0.1:8545
    manifest: deployments/local.json
    committees: [1]                     # committee ids served (round 0 and appeals)
    keystore: keys/oracle.json          # or key_env: ORACLE_KEY
    password_env: ORACLE_PASSWORD
    db: state/oracle.db
    http: {host: 127.0.0.1, port: 8701}
    peers: {"0xMember...": "http://127.0.0.1:8702"}
    documents: [specs/]                  # spec and reference documents, found by hash

Environment: `PACTBOND_RPC_URL=...`, nested with `__` (`PACTBOND_HTTP__PORT=9000`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from pactbond.errors import InvalidInputError
from pactbond.models import _address


def _peer_url(u: Any) -> str:
    """A peer's API: an http(s) URL with a host and no credentials (it is named in logs and
    in public evidence when a download from it fails)."""
    if not isinstance(u, str):
        raise ValueError(f"a peer's URL is a string, got {type(u).__name__}")
    parts = urlsplit(u)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"a peer's URL is http(s)://host[:port], got {u!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a peer's URL must not carry credentials")
    return u.rstrip("/")


class HttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8701


class OracleSettings(BaseSettings):
    """Everything an oracle process needs; secrets are named (an env var, a file), never held."""

    model_config = SettingsConfigDict(env_prefix="PACTBOND_", env_nested_delimiter="__",
                                      extra="forbid")

    rpc_url: str
    manifest: Path
    committees: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]
    keystore: Path | None = None
    password_env: str | None = None
    password_file: Path | None = None
    key_env: str | None = None
    db: Path = Path("oracle.db")
    http: HttpSettings = HttpSettings()
    peers: dict[str, str] = {}
    documents: list[Path] = []
    document_urls: list[str] = []
    # watching and deciding
    confirmations: Annotated[int, Field(ge=0, le=256)] = 2
    poll_interval: Annotated[float, Field(gt=0, le=60)] = 0.5
    start_block: Annotated[int, Field(ge=0)] | None = None
    log_chunk: Annotated[int, Field(ge=1, le=100_000)] = 2_000
    reorg_window: Annotated[int, Field(ge=1, le=10_000)] = 64
    margin: Annotated[int, Field(ge=0)] = 60  # seconds before E when a missing deliverable votes 0
    max_deliverable_bytes: Annotated[int, Field(ge=1, le=64 * 2**20)] = 2**20
    # uploaded deliverables this oracle has not voted on yet, in bytes: a bound on the disk
    # anyone who reaches the API can fill (uploads past it get 507 until votes use them)
    max_pending_upload_bytes: Annotated[int, Field(ge=0)] = 256 * 2**20
    # ... counted for this long after their upload; older ones no vote names are deleted
    upload_ttl_s: Annotated[int, Field(ge=60)] = 7 * 24 * 3600
    fetch_timeout: Annotated[float, Field(gt=0, le=120)] = 10.0  # per read; the tick's wait
    fetch_total_s: Annotated[float, Field(gt=0, le=3600)] = 120.0  # a whole download
    evaluate_retries: Annotated[int, Field(ge=1, le=100)] = 3
    peer_grace_blocks: Annotated[int, Field(ge=0, le=1000)] = 2
    keeper: bool = True
    # transactions
    max_in_flight: Annotated[int, Field(ge=1, le=1024)] = 16
    # a settle_batch whose gas estimate is above this (or that the node cannot estimate at
    # all, say over its block gas limit) is split in halves; well under EIP-7825's 2**24 cap
    max_batch_gas: Annotated[int, Field(ge=100_000, le=2**24)] = 10_000_000
    bump_after_blocks: Annotated[int, Field(ge=1)] = 3
    bump_percent: Annotated[int, Field(ge=10, le=1000)] = 25
    max_fee_cap_wei: Annotated[int, Field(ge=1)] = 500 * 10**9
    min_balance_wei: Annotated[int, Field(ge=0)] = 10**16
    # the node's --rpc.txfeecap (geth and reth: 1 ETH); 0 if it has none
    tx_fee_cap_wei: Annotated[int, Field(ge=0)] = 10**18
    rpc_timeout: Annotated[float, Field(gt=0, le=300)] = 10.0
    # evaluators: name -> "module:Class" to load instead of the registered plugin
    evaluator_overrides: dict[str, str] = {}
    scratch_dir: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("peers", mode="before")
    @classmethod
    def _peers(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {_address(k): _peer_url(u) for k, u in v.items()}
        return v

    @field_validator("rpc_url")
    @classmethod
    def _rpc(cls, v: str) -> str:
        if not v.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must start with http(s):// or ws(s)://")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the environment overrides the file (which arrives as init values)
        return env_settings, init_settings

    @classmethod
    def load(cls, path: str | Path | None) -> OracleSettings:
        """Read a config file (YAML or JSON) with environment overrides; relative paths in it
        are relative to the file. A bad file or field raises InvalidInputError naming it."""
        doc: dict[str, Any] = {}
        base = Path.cwd()
        if path is not None:
            p = Path(path)
            try:
                text = p.read_text()
            except OSError as e:
                raise InvalidInputError(f"cannot read config {p}: {e.strerror}") from None
            try:
                loaded = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
            except (ValueError, yaml.YAMLError) as e:
                raise InvalidInputError(f"config {p} is not valid YAML/JSON: {e}") from None
            if not isinstance(loaded, dict):
                raise InvalidInputError(f"config {p} must be a mapping of settings")
            doc = loaded
            base = p.resolve().parent
        try:
            s = cls(**doc)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "config"
            raise InvalidInputError(f"config field {where}: {first['msg']}") from None
        return s.resolved(base)

    def resolved(self, base: Path) -> OracleSettings:
        def rel(p: Path | None) -> Path | None:
            return None if p is None else (p if p.is_absolute() else base / p)

        return self.model_copy(update={
            "manifest": rel(self.manifest), "keystore": rel(self.keystore),
            "password_file": rel(self.password_file), "db": rel(self.db),
            "documents": [rel(d) for d in self.documents], "scratch_dir": rel(self.scratch_dir),
        })

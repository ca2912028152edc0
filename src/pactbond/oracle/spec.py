"""Evaluation specs: JSON documents named on-chain by their keccak-256 hash (a pact's spec_hash).

    {"pactbond_spec": 1, "name": "qa-v1",
     "evaluator": {"name": "reference", "version": "1"},
     "thresholds": {"fail_below_bps": 5000, "pass_at_bps": 9000},
     "deliverable": {"max_bytes": 1048576},
     "params": {...}}                           # the evaluator's own parameters

The hash is over the document's exact bytes. A `Library` finds documents (specs and the data they
name, such as reference sets) by hash in local directories or at URLs, and refuses bytes whose
hash differs. A spec whose thresholds differ from the pact's on-chain terms is refused: the
pact's terms are authoritative.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import requests
import urllib3
from eth_hash.auto import keccak
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pactbond.errors import PactbondError
from pactbond.models import BPS, PactTerms
from pactbond.oracle.fetch import download

MAX_DOCUMENT = 16 * 2**20  # bytes of one spec or data document


class SpecError(PactbondError, ValueError):
    """A spec (or a document it names) is missing, malformed or does not match its hash."""


def content_hash(data: bytes) -> bytes:
    """The content address of a document: keccak-256 of its bytes."""
    return keccak(data)


def hex32(h: bytes) -> str:
    return "0x" + h.hex()


def parse_hash(text: str) -> bytes:
    s = text[2:] if text.startswith("0x") else text
    try:
        b = bytes.fromhex(s)
    except ValueError:
        raise SpecError(f"not a 32-byte hex hash: {text!r}") from None
    if len(b) != 32:
        raise SpecError(f"not a 32-byte hex hash: {text!r}")
    return b


class EvaluatorRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=64)]
    version: Annotated[str, Field(min_length=1, max_length=32)]


class Thresholds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    fail_below_bps: Annotated[int, Field(ge=0, le=BPS)]
    pass_at_bps: Annotated[int, Field(ge=0, le=BPS)]


class DeliverableRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    max_bytes: Annotated[int, Field(ge=1, le=64 * 2**20)] = 2**20


class Spec(BaseModel):
    """A parsed spec document; `hash` is the keccak-256 of the bytes it was parsed from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pactbond_spec: Annotated[int, Field(ge=1, le=1)]
    name: Annotated[str, Field(min_length=1, max_length=128)]
    evaluator: EvaluatorRef
    thresholds: Thresholds
    deliverable: DeliverableRules = DeliverableRules()
    params: dict[str, Any] = {}
    description: str = ""
    hash: bytes = b""

    @model_validator(mode="after")
    def _coherent(self) -> Spec:
        if self.thresholds.fail_below_bps > self.thresholds.pass_at_bps:
            raise ValueError("thresholds.fail_below_bps is above thresholds.pass_at_bps")
        return self

    @classmethod
    def parse(cls, data: bytes, expected_hash: bytes | None = None) -> Spec:
        """Parse spec bytes; refuse them unless they hash to `expected_hash` (when given)."""
        h = content_hash(data)
        if expected_hash is not None and h != expected_hash:
            raise SpecError(
                f"spec bytes hash to {hex32(h)}, not {hex32(expected_hash)}: wrong document"
            )
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SpecError(f"spec {hex32(h)} is not JSON: {e}") from None
        if not isinstance(doc, dict):
            raise SpecError(f"spec {hex32(h)} is not a JSON object")
        doc.pop("hash", None)
        try:
            return cls.model_validate({**doc, "hash": h})
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "spec"
            raise SpecError(f"spec {hex32(h)}: {where}: {first['msg']}") from None

    def check_terms(self, terms: PactTerms) -> None:
        """Refuse a spec that names other thresholds than the pact's on-chain terms."""
        if self.hash != terms.spec_hash:
            raise SpecError(f"spec {hex32(self.hash)} is not the pact's {hex32(terms.spec_hash)}")
        t = self.thresholds
        if (t.fail_below_bps, t.pass_at_bps) != (terms.fail_below_bps, terms.pass_at_bps):
            raise SpecError(
                f"spec thresholds {t.fail_below_bps}/{t.pass_at_bps} differ from the pact's "
                f"{terms.fail_below_bps}/{terms.pass_at_bps}: the pact's terms are authoritative"
            )


class Library:
    """Documents by content hash, from local directories and base URLs (`<url>/<0xhash>`)."""

    def __init__(self, dirs: Sequence[Path] = (), urls: Sequence[str] = (),
                 timeout: float = 10.0) -> None:
        self.dirs = [Path(d) for d in dirs]
        self.urls = list(urls)
        self.timeout = timeout
        self._index: dict[bytes, Path] = {}

    def _scan(self) -> None:
        for d in self.dirs:
            if not d.is_dir():
                continue
            for p in sorted(d.rglob("*")):
                known = p in self._index.values()
                if p.is_file() and not known and p.stat().st_size <= MAX_DOCUMENT:
                    self._index[content_hash(p.read_bytes())] = p

    def add(self, data: bytes) -> bytes:
        """Keep a document in the first directory under its hash; returns the hash."""
        if not self.dirs:
            raise SpecError("no document directory configured")
        h = content_hash(data)
        self.dirs[0].mkdir(parents=True, exist_ok=True)
        p = self.dirs[0] / hex32(h)
        if not p.exists():
            tmp = p.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(p)
        self._index[h] = p
        return h

    def get(self, h: bytes) -> bytes:
        """The bytes whose hash is `h`; SpecError when no source has them."""
        p = self._index.get(h)
        if p is None:
            self._scan()
            p = self._index.get(h)
        if p is not None and p.exists():
            data = p.read_bytes()
            if content_hash(data) == h:
                return data
            del self._index[h]
        for base in self.urls:
            try:
                # streamed and bounded: at most MAX_DOCUMENT bytes, 3 x timeout in all (a body
                # read whole into memory, or dripped a byte at a time, held the service)
                body = download(f"{base.rstrip('/')}/{hex32(h)}", MAX_DOCUMENT, self.timeout,
                                3 * self.timeout)
            except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError,
                    OSError):
                continue
            if body is not None and content_hash(body) == h:
                if self.dirs:
                    self.add(body)  # kept: a reference set is read at every evaluation
                return body
        raise SpecError(f"no document with hash {hex32(h)} in {self._where()}")

    def spec(self, h: bytes) -> Spec:
        return Spec.parse(self.get(h), h)

    def _where(self) -> str:
        return ", ".join([str(d) for d in self.dirs] + self.urls) or "no source"

"""Reference answers ("reference", version "1"): accuracy against a reference set.

Spec params::

    {"reference": "0x<keccak-256 of the reference document>",   # required
     "hidden": false,          # true: the set is secret; the evidence carries commitments only
     "match": "normalized"}    # or "exact"

Reference document (loaded by its hash from the oracle's document library)::

    {"items": [{"id": "q1", "question": "What is ...?", "answer": "..."}, ...]}

`id`s are unique non-empty strings; other fields of an item are ignored.

Deliverable (UTF-8 JSON)::

    {"answers": {"q1": "...", "q2": "..."}}

Every answer is a string. A question with no answer counts as wrong; answers to ids the set does
not have are ignored (counted in `outputs.unknown_ids`). Score = floor(10,000 x correct / items).
`match: "exact"` compares the strings as they are; `"normalized"` compares them after Unicode
NFKC, case folding, trimming and collapsing runs of whitespace to one space.

A deliverable that is not UTF-8, not JSON, has duplicate keys or another shape scores 0 with a
check named "deliverable" saying why.

Hidden sets (`hidden: true`): the checks and outputs carry neither the expected answers nor the
submitted ones. Each check (one per item, in the set's order) carries

    salt_i     = keccak256(seed || utf8(id))              # seed: the job's 32-byte context seed
    commitment = "0x" + hex(keccak256(salt_i || canonical_json({"id": id, "answer": answer})))

where canonical_json is sorted keys, no spaces, UTF-8 (non-ASCII kept). The reveal,
`{"items": [{"id", "answer", "salt"}, ...]}`, is returned in `Outcome.hidden`, which the service
keeps back and publishes only once the job has ended. The salts are secret only while the seed is:
with a guessable seed, short answers ("yes", "42") could be recovered from their commitments.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from eth_hash.auto import keccak
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
from pactbond.oracle.spec import SpecError, hex32, parse_hash


class ReferenceParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    reference: str
    hidden: bool = False
    match: Literal["exact", "normalized"] = "normalized"

    @field_validator("reference")
    @classmethod
    def _hash(cls, v: str) -> str:
        try:
            parse_hash(v)
        except SpecError as e:
            raise ValueError(str(e)) from None
        return v


class ReferenceItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    id: Annotated[str, Field(min_length=1, max_length=256)]
    question: str = ""
    answer: str


class ReferenceSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    items: Annotated[list[ReferenceItem], Field(min_length=1)]

    @field_validator("items")
    @classmethod
    def _unique(cls, v: list[ReferenceItem]) -> list[ReferenceItem]:
        seen: set[str] = set()
        for it in v:
            if it.id in seen:
                raise ValueError(f"duplicate item id {it.id!r}")
            seen.add(it.id)
        return v


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 with non-ASCII kept (the evidence packet's encoding)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def item_salt(seed: bytes, item_id: str) -> bytes:
    return keccak(seed + item_id.encode())


def item_commitment(salt: bytes, item_id: str, answer: str) -> str:
    """The published commitment to one hidden item; anyone holding the reveal can recompute it."""
    return hex32(keccak(salt + canonical_json({"id": item_id, "answer": answer})))


def normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _answers(data: bytes) -> dict[str, str]:
    doc = parse_json(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("answers"), dict):
        raise MalformedDeliverableError('deliverable is not {"answers": {"<id>": "<answer>"}}')
    answers: dict[str, Any] = doc["answers"]
    for k, v in answers.items():
        if not isinstance(v, str):
            raise MalformedDeliverableError(
                f"answer to {clip(k, 64)!r} is a {type(v).__name__}, not a string"
            )
    return answers


class ReferenceEvaluator:
    """Accuracy of submitted answers against a (possibly hidden) reference set."""

    name: ClassVar[str] = "reference"
    version: ClassVar[str] = "1"
    deterministic: ClassVar[bool] = True

    def check_params(self, params: Mapping[str, Any]) -> None:
        parse_params(ReferenceParams, params, self.name)

    def _load_set(self, ctx: Context, ref: str) -> ReferenceSet:
        try:
            raw = ctx.load(parse_hash(ref))
        except SpecError as e:
            raise EvaluatorError(f"reference: cannot load the reference set: {e}") from None
        try:
            return ReferenceSet.model_validate(parse_json(raw, "reference set"))
        except MalformedDeliverableError as e:
            raise EvaluatorError(f"reference: {e}") from None
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EvaluatorError(
                f"reference: reference set {ref} is malformed: {where}: {first['msg']}"
            ) from None

    def evaluate(self, ctx: Context) -> Outcome:
        p = evaluation_params(ReferenceParams, ctx.params, self.name)
        ref = self._load_set(ctx, p.reference)
        try:
            answers = _answers(ctx.deliverable)
        except MalformedDeliverableError as e:
            return malformed(str(e), {"total": len(ref.items), "hidden": p.hidden})

        def same(expected: str, given: str) -> bool:
            if p.match == "exact":
                return expected == given
            return normalize(expected) == normalize(given)

        known = {it.id for it in ref.items}
        checks: list[Check] = []
        reveal: list[dict[str, str]] = []
        correct = missing = 0
        for it in ref.items:
            given = answers.get(it.id)
            ok = given is not None and same(it.answer, given)
            correct += ok
            missing += given is None
            if p.hidden:
                # result and commitment only: a submitted answer that is right *is* the answer
                salt = item_salt(ctx.seed, it.id)
                reveal.append({"id": it.id, "answer": it.answer, "salt": hex32(salt)})
                detail = "correct" if ok else ("no answer" if given is None else "wrong")
                checks.append(Check(name=it.id, passed=ok, detail=detail,
                                    commitment=item_commitment(salt, it.id, it.answer)))
            else:
                detail = (
                    "no answer" if given is None
                    else f"expected {clip(it.answer, 120)!r}, got {clip(given, 120)!r}"
                )
                checks.append(Check(name=it.id, passed=ok, detail=detail))
        outputs = {
            "total": len(ref.items),
            "correct": correct,
            "missing": missing,
            "unknown_ids": sum(1 for k in answers if k not in known),
            "match": p.match,
            "hidden": p.hidden,
        }
        return Outcome(
            score_bps=ratio_bps(correct, len(ref.items)),
            checks=checks,
            outputs=outputs,
            hidden={"items": reveal} if p.hidden else None,
        )

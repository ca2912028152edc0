"""JSON-schema conformance ("json-schema", version "1").

Spec params (exactly one of `schema` / `schema_hash`)::

    {"schema": {...},                 # an inline JSON Schema (draft 2020-12)
     "schema_hash": "0x<keccak-256>", # or: a schema document loaded by hash from the library
     "items_key": "records",          # optional: grade a list item by item (see below)
     "check_formats": false}          # true: enforce "format" (email, date-time, ...)

Deliverable: UTF-8 JSON.

* Without `items_key` the whole document is validated: 10,000 if it conforms, else 0.
* With `items_key` the deliverable must be an object whose value at that key is a list; each
  element is validated on its own and the score is floor(10,000 x valid elements / elements)
  (0 for an empty list).

There is one failing check per schema error (name = where in the deliverable, as a JSON
pointer, prefixed by `items[i]` in item mode; detail = the failed keyword and the message),
sorted by (item, location, schema location, message) and capped at 50; `outputs` has the
counts. A conforming deliverable gets one passing check. A deliverable that is not JSON (or,
with `items_key`, has no list at that key) scores 0 with a check named "deliverable".

Schemas are checked against the 2020-12 metaschema when the spec is loaded (inline) or
evaluated (by hash). Remote `$ref`s are never fetched: only the JSON Schema metaschemas and
references inside the schema itself resolve; anything else is the evaluator's error (the spec
is unusable), not the deliverable's. With `check_formats` the set of checked formats depends
on the optional packages installed next to jsonschema: leave it off for reproducible scores
across evaluators unless you control their environment.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

# no stubs for these in the dev group (types-jsonschema would add them)
import jsonschema  # type: ignore[import-untyped]
import jsonschema_specifications  # type: ignore[import-untyped]
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from referencing.exceptions import Unresolvable

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

MAX_CHECKS = 50
MAX_ERRORS = 1000  # per document / item: enough to sort deterministically, bounded work


class SchemaParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    schema_: dict[str, Any] | bool | None = Field(default=None, alias="schema")
    schema_hash: str | None = None
    items_key: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    check_formats: bool = False

    @field_validator("schema_hash")
    @classmethod
    def _hash(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_hash(v)
            except SpecError as e:
                raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _one_source(self) -> SchemaParams:
        if (self.schema_ is None) == (self.schema_hash is None):
            raise ValueError("give exactly one of schema / schema_hash")
        return self


def _check_schema(schema: Any) -> None:
    """Raise SpecError unless `schema` is a valid draft 2020-12 schema."""
    if not isinstance(schema, dict | bool):
        raise SpecError("json-schema: the schema is not an object or boolean")
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        raise SpecError(f"json-schema: invalid schema at {where}: {clip(e.message)}") from None


def _pointer(path: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path) or "/"


def _errors(v: Draft202012Validator, instance: Any) -> list[jsonschema.ValidationError]:
    try:
        found = list(itertools.islice(v.iter_errors(instance), MAX_ERRORS))
    except Unresolvable as e:
        raise EvaluatorError(
            f"json-schema: the schema's $ref {e} cannot be resolved (remote refs are not fetched)"
        ) from None
    return sorted(found, key=lambda e: (_pointer(e.absolute_path),
                                        _pointer(e.absolute_schema_path), e.message))


class SchemaEvaluator:
    """Does the deliverable (or each item of a list in it) conform to a JSON Schema?"""

    name: ClassVar[str] = "json-schema"
    version: ClassVar[str] = "1"
    deterministic: ClassVar[bool] = True

    def check_params(self, params: Mapping[str, Any]) -> None:
        p = parse_params(SchemaParams, params, self.name)
        if p.schema_ is not None:
            _check_schema(p.schema_)

    def _schema(self, ctx: Context, p: SchemaParams) -> Any:
        if p.schema_ is not None:
            schema: Any = p.schema_
        else:
            assert p.schema_hash is not None  # the model guarantees one source
            try:
                raw = ctx.load(parse_hash(p.schema_hash))
                schema = parse_json(raw, f"schema {p.schema_hash}")
            except (SpecError, MalformedDeliverableError) as e:
                raise EvaluatorError(f"json-schema: cannot load the schema: {e}") from None
        try:
            _check_schema(schema)
        except SpecError as e:
            raise EvaluatorError(str(e)) from None
        return schema

    def evaluate(self, ctx: Context) -> Outcome:
        p = evaluation_params(SchemaParams, ctx.params, self.name)
        validator = Draft202012Validator(
            self._schema(ctx, p),
            registry=jsonschema_specifications.REGISTRY,  # metaschemas only: never fetches
            format_checker=FormatChecker() if p.check_formats else None,
        )
        try:
            doc = parse_json(ctx.deliverable)
        except MalformedDeliverableError as e:
            return malformed(str(e))

        if p.items_key is None:
            errs = _errors(validator, doc)
            checks = [Check(name=_pointer(e.absolute_path), passed=False,
                            detail=f"{e.validator}: {clip(e.message)}") for e in errs]
            outputs: dict[str, Any] = {"valid": not errs, "errors": len(errs),
                                       "errors_capped": len(errs) >= MAX_ERRORS,
                                       "checks_capped": len(checks) > MAX_CHECKS}
            score = 0 if errs else ratio_bps(1, 1)
            if not errs:
                checks = [Check(name="schema", passed=True, detail="the document conforms")]
        else:
            items = doc.get(p.items_key) if isinstance(doc, dict) else None
            if not isinstance(items, list):
                return malformed(f"deliverable has no list at key {clip(p.items_key, 64)!r}")
            checks, valid, n_errors, capped = [], 0, 0, False
            for i, item in enumerate(items):
                if len(checks) >= MAX_CHECKS:  # past the cap only validity matters
                    ok = _is_valid(validator, item)
                    valid += ok
                    capped |= not ok
                    continue
                errs = _errors(validator, item)
                valid += not errs
                n_errors += len(errs)
                checks += [Check(name=f"items[{i}]{_pointer(e.absolute_path)}", passed=False,
                                 detail=f"{e.validator}: {clip(e.message)}") for e in errs]
            if not checks:
                checks = [Check(name="items", passed=bool(items),
                                detail=f"all {len(items)} items conform" if items
                                else "the list is empty")]
            outputs = {"items": len(items), "valid_items": valid,
                       "errors_in_checked_items": n_errors,
                       "checks_capped": capped or len(checks) > MAX_CHECKS}
            score = ratio_bps(valid, len(items))
        return Outcome(score_bps=score, checks=checks[:MAX_CHECKS], outputs=outputs)



def _is_valid(validator: Draft202012Validator, item: Any) -> bool:
    try:
        return bool(validator.is_valid(item))
    except Unresolvable as e:
        raise EvaluatorError(
            f"json-schema: the schema's $ref {e} cannot be resolved (remote refs are not fetched)"
        ) from None

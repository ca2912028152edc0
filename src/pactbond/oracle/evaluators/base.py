"""The evaluator plugin interface.

An evaluator turns (spec parameters, deliverable bytes) into a score in basis points with the
checks behind it. It is found by name: the built-ins, then the `pactbond.evaluators` entry point
group, so a third party adds one by shipping a package that declares

    [project.entry-points."pactbond.evaluators"]
    my-judge = "my_pkg:MyJudge"

A plugin is a class with `name`, `version`, `deterministic`, `check_params(params)` (raise
SpecError on bad parameters; called when a spec is loaded, before any job) and
`evaluate(ctx) -> Outcome`. It must not raise for a bad deliverable: a deliverable that cannot be
parsed scores 0 with a check saying why. It raises only for its own faults (EvaluatorError), in
which case the service retries and, by the deadline, withholds nothing: it votes 0 with the
reason.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pactbond.errors import PactbondError
from pactbond.models import BPS
from pactbond.oracle.spec import SpecError


class EvaluatorError(PactbondError, RuntimeError):
    """The evaluator itself failed (not the deliverable): retry, or vote 0 with the reason."""


class Check(BaseModel):
    """One graded item: a question, a test, a schema rule, a probe request."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    detail: str = ""
    # the salted commitment to a hidden reference item (reference evaluator), else ""
    commitment: str = ""


class Outcome(BaseModel):
    """What an evaluation produced. `outputs` and `checks` go into the evidence packet;
    `hidden` (e.g. a hidden reference set's answers and salts) is kept back and published
    only after the verdict."""

    model_config = ConfigDict(frozen=True)

    score_bps: int = Field(ge=0, le=BPS)
    checks: list[Check] = []
    outputs: dict[str, Any] = {}
    hidden: dict[str, Any] | None = None
    error: str = ""  # why the deliverable scored 0 when it could not be evaluated


@dataclass(frozen=True)
class Context:
    """The inputs of one evaluation. `load(hash)` returns a document's bytes by content hash
    (reference sets, test suites), raising SpecError when unknown. `seed` is a job-specific
    32-byte value for salts, so re-running the same job gives the same evidence."""

    deliverable: bytes
    params: Mapping[str, Any]
    load: Callable[[bytes], bytes]
    seed: bytes = b"\x00" * 32
    job_id: int = 0
    scratch_root: str | None = None  # where sandboxes make their scratch directories
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Evaluator(Protocol):
    name: ClassVar[str]
    version: ClassVar[str]
    deterministic: ClassVar[bool]  # same inputs -> same outcome (an HTTP probe is not)

    def check_params(self, params: Mapping[str, Any]) -> None: ...

    def evaluate(self, ctx: Context) -> Outcome: ...


def ratio_bps(passed: int, total: int) -> int:
    """floor(10,000 x passed / total); 0 for no items."""
    return BPS * passed // total if total > 0 else 0


# --- helpers shared by the built-in evaluators ---------------------------------------------

P = TypeVar("P", bound=BaseModel)


class MalformedDeliverableError(PactbondError, ValueError):
    """The deliverable cannot be evaluated (not UTF-8, not JSON, wrong shape): it scores 0."""


def parse_params(model: type[P], params: Mapping[str, Any], evaluator: str) -> P:
    """Validate an evaluator's parameters with a pydantic model; SpecError names the field."""
    try:
        return model.model_validate(dict(params))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        raise SpecError(f"{evaluator}: params.{where}: {first['msg']}") from None


def evaluation_params(model: type[P], params: Mapping[str, Any], evaluator: str) -> P:
    """parse_params inside evaluate(): parameters that check_params should have refused are the
    evaluator's (the service's) fault, not the deliverable's."""
    try:
        return parse_params(model, params, evaluator)
    except SpecError as e:
        raise EvaluatorError(str(e)) from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise MalformedDeliverableError(f"duplicate key {k[:64]!r}")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise MalformedDeliverableError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999 parses to inf, which JSON cannot carry on
        raise MalformedDeliverableError(f"{text[:40]} is out of range")
    return value


MAX_JSON_DEPTH = 128
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_DELTA = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(data: bytes) -> int:
    """How deeply arrays/objects nest in `data` (strings skipped), without parsing it: the
    parser recurses per level and, with a raised recursion limit, overflows the C stack."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKET)
    if brackets.count(b"[") + brackets.count(b"{") <= MAX_JSON_DEPTH:
        return 0  # cannot be too deep; skip the walk
    # running sum of +1 / -1 per bracket, in C (map/accumulate/max): ~50 ns a bracket
    return max(itertools.accumulate(map(_DELTA.__getitem__, brackets)))


def parse_json(data: bytes, what: str = "deliverable") -> Any:
    """Strict JSON from bytes: UTF-8, no duplicate keys (which value would count is ambiguous),
    no NaN/Infinity, no lone surrogates, nesting at most MAX_JSON_DEPTH deep. Raises
    MalformedDeliverableError saying why."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedDeliverableError(f"{what} is not UTF-8 (byte {e.start})") from None
    if json_depth(data) > MAX_JSON_DEPTH:
        raise MalformedDeliverableError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant,
                           parse_float=_finite)
        # a lone surrogate escape ("\ud800") is not Unicode: it would break UTF-8 evidence later
        json.dumps(value, ensure_ascii=False).encode()
        return value
    except UnicodeEncodeError:
        raise MalformedDeliverableError(f"{what} has a lone surrogate escape (not Unicode)") \
            from None
    except MalformedDeliverableError as e:
        raise MalformedDeliverableError(f"{what} is not acceptable JSON: {e}") from None
    except RecursionError:
        raise MalformedDeliverableError(f"{what} nests too deeply") from None
    except ValueError as e:  # JSONDecodeError, and ints beyond the digit limit
        raise MalformedDeliverableError(f"{what} is not JSON: {str(e)[:200]}") from None


def malformed(reason: str, outputs: Mapping[str, Any] | None = None) -> Outcome:
    """The outcome of a deliverable that cannot be evaluated: 0, with a check saying why."""
    return Outcome(
        score_bps=0,
        checks=[Check(name="deliverable", passed=False, detail=reason)],
        outputs=dict(outputs or {}),
        error=reason,
    )


def clip(text: str, limit: int = 200) -> str:
    """Shorten text for a check's detail (evidence stays small)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"

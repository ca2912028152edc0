"""Find evaluators by name: the built-ins, then the `pactbond.evaluators` entry point group.

A built-in name cannot be taken over by a plugin (the built-in wins). A plugin's entry point
names a class (instantiated with no arguments) or an instance; it must have the Evaluator
members with the right types, and its `name` must be the entry point's name.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pactbond.oracle.evaluators.base import Evaluator
from pactbond.oracle.evaluators.command import CommandEvaluator
from pactbond.oracle.evaluators.http_probe import HttpProbeEvaluator
from pactbond.oracle.evaluators.reference import ReferenceEvaluator
from pactbond.oracle.evaluators.schema import SchemaEvaluator
from pactbond.oracle.spec import Spec, SpecError

GROUP = "pactbond.evaluators"

BUILTINS: dict[str, type[Any]] = {
    "reference": ReferenceEvaluator,
    "json-schema": SchemaEvaluator,
    "command": CommandEvaluator,
    "http-probe": HttpProbeEvaluator,
}


def _entry_points() -> list[EntryPoint]:
    """The plugin entry points, sorted by name (a seam for tests)."""
    return sorted(entry_points(group=GROUP), key=lambda ep: ep.name)


def names() -> list[str]:
    """Built-ins first, then installed plugins (a plugin named like a built-in is hidden)."""
    extra = [ep.name for ep in _entry_points() if ep.name not in BUILTINS]
    return list(BUILTINS) + list(dict.fromkeys(extra))


def _validate(obj: Any, name: str, origin: str) -> Evaluator:
    problems = []
    for attr, typ in (("name", str), ("version", str), ("deterministic", bool)):
        if not isinstance(getattr(obj, attr, None), typ):
            problems.append(f"`{attr}` is not a {typ.__name__}")
    for meth in ("check_params", "evaluate"):
        if not callable(getattr(obj, meth, None)):
            problems.append(f"no `{meth}` method")
    if problems or not isinstance(obj, Evaluator):
        raise SpecError(f"evaluator {name!r} ({origin}) is not an evaluator: "
                        + "; ".join(problems or ["missing Evaluator members"]))
    if obj.name != name:
        raise SpecError(f"evaluator {name!r} ({origin}) calls itself {obj.name!r}")
    return obj


def get(name: str) -> Evaluator:
    """An instance of the evaluator called `name`; SpecError when unknown or unusable."""
    if name in BUILTINS:
        return _validate(BUILTINS[name](), name, "built-in")
    for ep in _entry_points():
        if ep.name != name:
            continue
        origin = f"entry point {ep.value}"
        try:
            obj = ep.load()
            if isinstance(obj, type):
                obj = obj()
        except Exception as e:  # a broken plugin must not take the service down
            raise SpecError(f"evaluator {name!r} ({origin}) failed to load: "
                            f"{type(e).__name__}: {e}") from None
        return _validate(obj, name, origin)
    raise SpecError(f"unknown evaluator {name!r}; known: {', '.join(names())}")


def check_spec(spec: Spec) -> Evaluator:
    """The spec's evaluator, after checking its version and the spec's params against it."""
    plugin = get(spec.evaluator.name)
    if spec.evaluator.version != plugin.version:
        raise SpecError(
            f"spec {spec.name!r} wants evaluator {spec.evaluator.name!r} version "
            f"{spec.evaluator.version!r}, but version {plugin.version!r} is installed"
        )
    plugin.check_params(spec.params)
    return plugin

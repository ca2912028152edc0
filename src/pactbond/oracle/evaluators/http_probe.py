"""An HTTP SLA probe ("http-probe", version "1"): success rate and latency of named endpoints.

Spec params::

    {"endpoints": [                                   # 1..20, distinct URLs
        {"url": "https://api.example.com/health",     # http or https
         "method": "GET",                             # GET HEAD POST PUT PATCH DELETE OPTIONS
         "expect_status": 200}],                      # the one status that counts as success
     "requests": 20,          # requests per endpoint, 1..1000, sent one after another
     "timeout_s": 5,          # per request (connect, and the whole response), 0 < t <= 60
     "max_latency_ms": 500,   # optional: score 0 when the p95 latency is above this
     "min_success_bps": 9900} # optional: score 0 when the success rate is below this

Deliverable (UTF-8 JSON)::

    {"endpoints": ["https://api.example.com/health", ...]}

the endpoints the agent says it serves. The probe calls only URLs the spec names: a listed URL
the spec does not name is never fetched and counts as `requests` failures, and a spec endpoint
the deliverable does not list is not fetched and counts as `requests` failures too (so leaving
out a failing endpoint does not help). Repeated URLs count once.

Score = floor(10,000 x successful requests / (requests x (spec endpoints + refused URLs))),
then 0 if the p95 latency of the requests made is above `max_latency_ms` or the score is below
`min_success_bps`. A request succeeds when the response has `expect_status`, arrives within
`timeout_s` and its body (read up to 1 MiB) completes. Redirects are not followed (they would
reach URLs the spec does not name) and proxy settings from the environment are ignored.
Latencies are integer microseconds from sending the request to the end of the body,
percentiles by the nearest-rank method.

Not deterministic: the score depends on the network and the service's state at the time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pactbond.oracle.evaluators.base import (
    Check,
    Context,
    MalformedDeliverableError,
    Outcome,
    clip,
    evaluation_params,
    malformed,
    parse_json,
    parse_params,
    ratio_bps,
)

MAX_BODY = 2**20
MAX_LISTED = 100  # URLs in a deliverable


class Endpoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    url: Annotated[str, Field(min_length=1, max_length=2048)]
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    expect_status: Annotated[int, Field(ge=100, le=599)] = 200

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        u = urlsplit(v)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"{v!r} is not an http(s) URL with a host")
        return v


class ProbeParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    endpoints: Annotated[list[Endpoint], Field(min_length=1, max_length=20)]
    requests: Annotated[int, Field(ge=1, le=1000)] = 20
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5
    max_latency_ms: Annotated[int, Field(ge=1)] | None = None
    min_success_bps: Annotated[int, Field(ge=0, le=10_000)] | None = None

    @field_validator("endpoints")
    @classmethod
    def _distinct(cls, v: list[Endpoint]) -> list[Endpoint]:
        if len({e.url for e in v}) != len(v):
            raise ValueError("endpoint URLs repeat")
        return v


def percentile(sorted_us: list[int], pct: int) -> int:
    """Nearest-rank percentile of sorted integers (0 for none): no floats on the score path."""
    if not sorted_us:
        return 0
    rank = max(1, -(-pct * len(sorted_us) // 100))  # ceil(pct/100 x n)
    return sorted_us[rank - 1]


def _latency(us: list[int]) -> dict[str, int]:
    s = sorted(us)
    return {"p50": percentile(s, 50), "p95": percentile(s, 95), "p99": percentile(s, 99),
            "max": s[-1] if s else 0}


def _listed(data: bytes) -> list[str]:
    doc = parse_json(data)
    urls = doc.get("endpoints") if isinstance(doc, dict) else None
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise MalformedDeliverableError('deliverable is not {"endpoints": ["<url>", ...]}')
    if len(urls) > MAX_LISTED:
        raise MalformedDeliverableError(f"more than {MAX_LISTED} endpoints listed")
    return list(dict.fromkeys(urls))  # repeats count once, order kept


def _one(session: requests.Session, ep: Endpoint, timeout_s: float) -> tuple[bool, int, str]:
    """(success, latency in us, status code or error kind)."""
    limit_us = round(timeout_s * 1_000_000)
    t0 = time.perf_counter_ns()
    try:
        with session.request(ep.method, ep.url, timeout=timeout_s, allow_redirects=False,
                             stream=True) as r:
            seen = 0
            for chunk in r.iter_content(65536):
                seen += len(chunk)
                if seen >= MAX_BODY:
                    break
                if (time.perf_counter_ns() - t0) // 1000 > limit_us:  # a body dripping in
                    break
            took = (time.perf_counter_ns() - t0) // 1000
            if took > limit_us:
                return False, took, "timeout"
            return r.status_code == ep.expect_status, took, str(r.status_code)
    except requests.Timeout:
        kind = "timeout"
    except requests.ConnectionError:
        kind = "connection error"
    except requests.RequestException as e:
        kind = type(e).__name__
    return False, (time.perf_counter_ns() - t0) // 1000, kind


class HttpProbeEvaluator:
    """Probes the spec's endpoints; score = success rate, gated by p95 latency."""

    name: ClassVar[str] = "http-probe"
    version: ClassVar[str] = "1"
    deterministic: ClassVar[bool] = False

    def check_params(self, params: Mapping[str, Any]) -> None:
        parse_params(ProbeParams, params, self.name)

    def evaluate(self, ctx: Context) -> Outcome:
        p = evaluation_params(ProbeParams, ctx.params, self.name)
        try:
            listed = _listed(ctx.deliverable)
        except MalformedDeliverableError as e:
            return malformed(str(e))
        named = {e.url: e for e in p.endpoints}
        refused = [u for u in listed if u not in named]

        checks: list[Check] = []
        per_endpoint: dict[str, Any] = {}
        all_us: list[int] = []
        succeeded = 0
        with requests.Session() as session:
            session.trust_env = False  # no proxies or .netrc from the environment
            for ep in p.endpoints:
                label = f"{ep.method} {ep.url}"
                if ep.url not in listed:
                    checks.append(Check(name=label, passed=False,
                                        detail="not listed by the deliverable; not fetched"))
                    continue
                results = [_one(session, ep, p.timeout_s) for _ in range(p.requests)]
                ok = sum(r[0] for r in results)
                us = [r[1] for r in results]
                all_us += us
                succeeded += ok
                outcomes = Counter(r[2] for r in results)
                lat = _latency(us)
                per_endpoint[ep.url] = {"method": ep.method, "requests": p.requests,
                                        "succeeded": ok, "latency_us": lat,
                                        "outcomes": dict(sorted(outcomes.items()))}
                seen = ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
                checks.append(Check(
                    name=label, passed=ok == p.requests,
                    detail=f"{ok}/{p.requests} returned {ep.expect_status}; p50 {lat['p50']} us, "
                           f"p95 {lat['p95']} us; {clip(seen, 120)}",
                ))
        for u in refused:
            checks.append(Check(name=clip(u, 200), passed=False,
                                detail="not an endpoint the spec names; not fetched"))

        total = p.requests * (len(p.endpoints) + len(refused))
        score = ratio_bps(succeeded, total)
        lat = _latency(all_us)
        if p.max_latency_ms is not None and all_us:
            within = lat["p95"] <= p.max_latency_ms * 1000
            checks.append(Check(name="latency", passed=within,
                                detail=f"p95 {lat['p95']} us, bound {p.max_latency_ms} ms"))
            if not within:
                score = 0
        if p.min_success_bps is not None:
            rate = ratio_bps(succeeded, total)
            enough = rate >= p.min_success_bps
            checks.append(Check(name="success_rate", passed=enough,
                                detail=f"{rate} bps, minimum {p.min_success_bps} bps"))
            if not enough:
                score = 0
        outputs = {
            "requests_per_endpoint": p.requests,
            "requests_made": len(all_us),
            "requests_counted": total,
            "succeeded": succeeded,
            "success_bps": ratio_bps(succeeded, total),
            "latency_us": lat,
            "refused": len(refused),
            "endpoints": per_endpoint,
        }
        return Outcome(score_bps=score, checks=checks, outputs=outputs)

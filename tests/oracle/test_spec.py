"""Spec documents by hash: the service refuses a spec whose bytes do not hash to the pact's
spec_hash, a malformed one, and one whose thresholds differ from the pact's terms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pactbond.models import PactTerms
from pactbond.oracle.spec import Library, Spec, SpecError, content_hash

DOC = {"pactbond_spec": 1, "name": "qa", "evaluator": {"name": "reference", "version": "1"},
       "thresholds": {"fail_below_bps": 5000, "pass_at_bps": 9000},
       "params": {"reference": "0x" + "11" * 32}}


def terms(spec_hash: bytes, fail: int = 5000, pass_: int = 9000) -> PactTerms:
    return PactTerms(committee_id=1, appeal_committee_id=2, spec_hash=spec_hash,
                     fail_below_bps=fail, pass_at_bps=pass_, accept_window=60, work_window=60,
                     eval_window=60, cap_initial=1, cap_max=1)


def test_spec_loads_by_hash_and_matches_the_pact(tmp_path: Path) -> None:
    data = json.dumps(DOC).encode()
    (tmp_path / "any-name.json").write_bytes(data)
    spec = Library([tmp_path]).spec(content_hash(data))
    assert spec.name == "qa" and spec.hash == content_hash(data)
    spec.check_terms(terms(content_hash(data)))


def test_bytes_that_do_not_hash_to_the_pacts_spec_hash_are_refused(tmp_path: Path) -> None:
    data = json.dumps(DOC).encode()
    wanted = content_hash(data + b" ")
    with pytest.raises(SpecError, match="wrong document"):
        Spec.parse(data, wanted)
    # a library never serves a file under a hash it does not have
    (tmp_path / f"0x{wanted.hex()}.json").write_bytes(data)  # misnamed on purpose
    with pytest.raises(SpecError, match="no document with hash"):
        Library([tmp_path]).get(wanted)


def test_spec_with_other_thresholds_than_the_pact_is_refused() -> None:
    data = json.dumps(DOC).encode()
    spec = Spec.parse(data)
    with pytest.raises(SpecError, match="authoritative"):
        spec.check_terms(terms(content_hash(data), fail=4000))
    with pytest.raises(SpecError, match="not the pact's"):
        spec.check_terms(terms(b"\x22" * 32))


@pytest.mark.parametrize(("data", "reason"), [
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (json.dumps({**DOC, "pactbond_spec": 2}).encode(), "pactbond_spec"),
    (json.dumps({**DOC, "extra": 1}).encode(), "extra"),
    (json.dumps({**DOC, "thresholds": {"fail_below_bps": 9000, "pass_at_bps": 5000}}).encode(),
     "above"),
])
def test_malformed_spec_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(SpecError, match=reason):
        Spec.parse(data)

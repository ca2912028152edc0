"""The money rules of DESIGN.md, in integers, exactly as the contracts apply them.

These are pure functions of the pact terms, the job value and the scores. The client's
preview_settlement and the stateful fuzz model call them; tests hold them equal to the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pactbond.models import BPS, PactTerms


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def bond(t: PactTerms, value: int) -> int:
    """min(bond cap, ceil(value x bond_bps / 10,000))."""
    return min(t.bond_cap, ceil_div(value * t.bond_bps, BPS))


def slashed(t: PactTerms, value: int) -> int:
    """ceil(bond x slash_bps / 10,000)."""
    return ceil_div(bond(t, value) * t.slash_bps, BPS)


def pay(t: PactTerms, score: int) -> int:
    """The agent's share of the value in bps for a score."""
    if score >= t.pass_at_bps:
        return BPS
    if score < t.fail_below_bps:
        return 0
    return BPS * (score - t.fail_below_bps) // (t.pass_at_bps - t.fail_below_bps)


def band(t: PactTerms, score: int) -> str:
    if score >= t.pass_at_bps:
        return "pass"
    if score < t.fail_below_bps:
        return "fail"
    return "partial"


def median(scores: Sequence[int]) -> int:
    """Median; for an even count the floor of the mean of the two middle scores."""
    if not scores:
        raise ValueError("no scores")
    xs = sorted(scores)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) // 2


def slash_split(t: PactTerms, amount: int) -> tuple[int, int, int]:
    """(to buyer, to insurance, burned): floor each share, the remainder to the buyer."""
    ins = amount * t.slash_insurance_bps // BPS
    burn = amount * t.slash_burn_bps // BPS
    return amount - ins - burn, ins, burn


def committee_bound(value: int, t: PactTerms, active: int, threshold: int, penalty: int) -> bool:
    """value + fee + the bond's slash <= (L - T + 1) x penalty (open is refused otherwise)."""
    return value + t.evaluator_fee + slashed(t, value) <= (active - threshold + 1) * penalty


@dataclass
class Settlement:
    """Who gets what when a job with a verdict settles (all ints, wei)."""

    score: int
    band: str
    to_agent: int  # into the agent's free stake
    to_buyer: int  # credit: escrow rest + fee remainder + the slash's buyer share
    fee_each: int  # credit to each counted round-0 voter
    slashed: int
    to_insurance: int
    burned: int
    bond_returned: int  # back to the agent's free stake


def settle(t: PactTerms, value: int, score: int, voters: int) -> Settlement:
    """The terminal split of a job with a verdict `score` and `voters` counted round-0 votes."""
    to_agent = value if t.shadow else value * pay(t, score) // BPS
    fee_each = t.evaluator_fee // voters
    b = band(t, score)
    s = slashed(t, value) if b == "fail" else 0
    s_buyer, s_ins, s_burn = slash_split(t, s)
    to_buyer = value - to_agent + (t.evaluator_fee - fee_each * voters) + s_buyer
    return Settlement(
        score=score, band=b, to_agent=to_agent, to_buyer=to_buyer, fee_each=fee_each,
        slashed=s, to_insurance=s_ins, burned=s_burn, bond_returned=bond(t, value) - s,
    )


@dataclass
class Appeal:
    """The outcome of a challenge once round 1 is counted."""

    quorum: bool
    overturned: bool
    challenger_won: bool
    final_score: int
    fee_each: int  # appeal fee per counted round-1 voter
    to_challenger: int
    to_other: int
    burned: int
    penalized: list[int]  # indices (into the round-0 scores given) whose reservation is taken
    favoured: str  # "buyer" or "agent"


def appeal(
    t: PactTerms, s0: int, round0: Sequence[int], round1: Sequence[int], appeal_threshold: int,
    challenger: str,
) -> Appeal:
    """Challenge economics of DESIGN.md for challenger "buyer" or "agent"."""
    if len(round1) < appeal_threshold:
        return Appeal(False, False, False, s0, 0, t.challenge_bond, 0, 0, [], challenger)
    s1 = median(round1)
    p0, p1 = pay(t, s0), pay(t, s1)
    overturned = abs(p0 - p1) >= t.min_appeal_delta_bps
    favoured = "buyer" if p1 < p0 else "agent"
    won = overturned and favoured == challenger
    n1 = len(round1)
    fee_each = t.appeal_fee // n1
    to_challenger = t.appeal_fee - fee_each * n1
    rest = t.challenge_bond - t.appeal_fee
    to_other = burned = 0
    if won:
        to_challenger += rest
    else:
        to_other = rest // 2
        burned = rest - to_other
    penalized: list[int] = []
    if overturned:
        for i, v in enumerate(round0):
            pv = pay(t, v)
            delta = t.min_appeal_delta_bps
            if (pv >= p1 + delta) if p1 < p0 else (pv + delta <= p1):
                penalized.append(i)
    return Appeal(True, overturned, won, s1 if overturned else s0, fee_each, to_challenger,
                  to_other, burned, penalized, favoured)

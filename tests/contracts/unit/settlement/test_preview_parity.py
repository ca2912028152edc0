"""Parity: the chain's settlement of random jobs equals pactbond.money exactly (seeded random).

Each test creates its random pacts once, then runs each case inside boa.env.anchor() so every
case starts from the same world."""

import random

import boa

from pactbond import eip712, money
from pactbond.models import Vote
from tests.contracts.conftest import E18, ETH, EVAL_PENALTY, keccak_str
from tests.contracts.unit.settlement.conftest import SETTLED, warp_to

EVAL_WINDOW = 600


def random_terms(rng: random.Random, *, shadow: bool = False, challenge_window: int | None = None):
    fb = rng.randint(0, 10_000)
    pa = rng.choice([fb, rng.randint(fb, 10_000), 10_000])
    ins = rng.randint(0, 10_000)
    burn = rng.randint(0, 10_000 - ins)
    cw = rng.choice([0, 60]) if challenge_window is None else challenge_window
    over = dict(
        fail_below_bps=fb, pass_at_bps=pa,
        bond_bps=0 if shadow else rng.choice([0, 1, rng.randint(1, 10_000), 10_000]),
        bond_cap=rng.choice([10 * E18, rng.randint(0, 2 * E18), 7]),
        slash_bps=0 if shadow else rng.choice([1, rng.randint(0, 10_000), 10_000]),
        slash_buyer_bps=10_000 - ins - burn, slash_insurance_bps=ins, slash_burn_bps=burn,
        shadow=shadow,
        evaluator_fee=rng.choice([0, 1, 2, rng.randint(0, 5 * E18 // 100)]),
        eval_window=EVAL_WINDOW, challenge_window=cw, appeal_window=60 if cw else 0,
        cap_initial=10 * E18, cap_max=10 * E18,
        spec_hash=keccak_str(f"spec:{rng.random()}"),
    )
    return over


def random_score(rng: random.Random, t) -> int:
    edges = [t.fail_below_bps - 1, t.fail_below_bps, t.pass_at_bps - 1, t.pass_at_bps,
             rng.randint(0, 10_000), rng.randint(0, 10_000)]
    return min(10_000, max(0, rng.choice(edges)))


class Runner:
    """A lean job driver: the terms tuple and the signing domain are computed once."""

    def __init__(self, world):
        self.w = world
        self.domain = world.domain()
        self.cv, self.av = world.versions(world.terms())

    def vote(self, member, jid, deliverable, t, score, deadline, round_=0):
        ev = keccak_str(f"ev:{jid}:{member.name}:{round_}")
        v = Vote(job_id=jid, deliverable_hash=deliverable, spec_hash=t.spec_hash, score_bps=score,
                 evidence_hash=ev, round=round_, deadline=deadline)
        sig = eip712.sign_digest(member.key, eip712.digest(self.domain, eip712.vote_struct_hash(v)))
        return (member.address, score, ev, deadline, sig)

    def submitted(self, pid, t, value):
        w, tt = self.w, t.as_tuple()
        with boa.env.prank(w.buyer.address):
            jid = w.escrow.open(tt, pid, w.agent.address, value, self.cv, self.av,
                                value=value + t.evaluator_fee)
        deliverable = keccak_str(f"deliverable:{jid}")
        with boa.env.prank(w.agent.address):
            w.escrow.accept(jid, tt)
            w.escrow.submit(jid, tt, deliverable, "")
        return jid, deliverable, w.now() + t.eval_window

    def state(self, appeal: bool = False):
        w, esc = self.w, self.w.escrow
        out = dict(
            free=esc.agent_stake(w.agent.address, ETH), buyer=esc.credits(w.buyer.address, ETH),
            agent=esc.credits(w.agent.address, ETH),
            insurance=esc.credits(w.insurance.address, ETH), burned=esc.burned(ETH),
            voters=[esc.credits(m.address, ETH) for m in w.evaluators],
        )
        if appeal:
            out["appeal"] = [esc.credits(m.address, ETH) for m in w.appeal_evaluators]
            out["stakes"] = [esc.evaluator_stake(m.address, ETH)[0] for m in w.evaluators]
        return out

    def settle_case(self, pid, t, value, scores):
        """Run one job to SETTLED with round-0 `scores` from evaluators[0..]; compare with
        the world's state before the job (self.base, every case starts from it)."""
        w, tt, before = self.w, t.as_tuple(), self.base
        jid, d, E = self.submitted(pid, t, value)
        bond = money.bond(t, value)
        votes = [self.vote(m, jid, d, t, s, E) for m, s in zip(w.evaluators, scores, strict=False)]
        with boa.env.prank(w.attacker.address):
            w.escrow.settle(jid, tt, votes)
        n = len(scores)
        median = money.median(scores)
        assert w.escrow.median_score(jid, 0) == median
        if n < 3 or t.challenge_window > 0:
            close = w.now() if n == 3 else E  # all three: round 0 closed early
            warp_to(w, close + t.challenge_window + 1)
            with boa.env.prank(w.attacker.address):
                w.escrow.finalize(jid, tt)
        assert w.job(jid)["state"] == SETTLED
        after = self.state()
        s = money.settle(t, value, median, n)
        case = (t, value, scores, s)
        # free stake: the bond went out at accept, the payout and the bond's rest came back
        assert after["free"] == (before["free"][0] - bond + s.to_agent + s.bond_returned, 0), case
        assert s.bond_returned == bond - s.slashed
        assert after["buyer"] - before["buyer"] == s.to_buyer, case
        assert after["agent"] == before["agent"], case
        assert after["insurance"] - before["insurance"] == s.to_insurance, case
        assert after["burned"] - before["burned"] == s.burned, case
        assert [a - b for a, b in zip(after["voters"], before["voters"], strict=True)] == \
            [s.fee_each] * n + [0] * (3 - n), case
        # nothing leaves the contract: the job's value and fee moved into the ledgers
        assert boa.env.get_balance(w.escrow.address) == self.balance0 + value + t.evaluator_fee
        moved = (sum(after["free"]) - sum(before["free"]) + after["buyer"] - before["buyer"]
                 + after["insurance"] - before["insurance"] + after["burned"] - before["burned"]
                 + sum(after["voters"]) - sum(before["voters"]))
        assert moved == value + t.evaluator_fee, case

    def run(self, rng, cases, pacts, voters, **term_kw):
        w = self.w
        made = []
        for _ in range(pacts):
            pid, t = w.create_pact(**random_terms(rng, **term_kw))
            made.append((pid, t))
        w.stake_agent(20 * E18)
        self.balance0 = boa.env.get_balance(w.escrow.address)
        self.base = self.state()
        for i in range(cases):
            pid, t = made[i % pacts]
            value = rng.choice([1, 3, rng.randint(1, 4 * E18), E18 + rng.randint(0, 99)])
            scores = [random_score(rng, t) for _ in range(rng.choice(voters))]
            with boa.env.anchor():
                self.settle_case(pid, t, value, scores)


def test_settle_parity__random_terms_three_voters__chain_equals_money(world):
    Runner(world).run(random.Random(1), cases=66, pacts=22, voters=[3])


def test_settle_parity__random_terms_two_voters__chain_equals_money(world):
    Runner(world).run(random.Random(2), cases=66, pacts=22, voters=[2])


def test_settle_parity__zero_challenge_window__settles_on_closing_vote(world):
    Runner(world).run(random.Random(3), cases=40, pacts=14, voters=[3], challenge_window=0)


def test_settle_parity__shadow_pacts__value_to_agent_any_band(world):
    Runner(world).run(random.Random(4), cases=30, pacts=10, voters=[2, 3], shadow=True)


def test_appeal_parity__random_challenges__chain_equals_money_appeal(world):
    rng = random.Random(5)
    r = Runner(world)
    made = []
    for _ in range(10):
        bond = rng.choice([1, rng.randint(1, E18 // 10) * 2 + 1])
        made.append(world.create_pact(
            **random_terms(rng, challenge_window=60), challenge_bond=bond,
            appeal_fee=rng.choice([0, bond, rng.randint(0, bond)]),
            min_appeal_delta_bps=rng.choice([1, rng.randint(1, 10_000), 10_000])))
    world.stake_agent(20 * E18)
    for i in range(30):
        pid, t = made[i % len(made)]
        value = rng.randint(1, 3 * E18)
        r0 = [random_score(rng, t) for _ in range(3)]
        r1 = [random_score(rng, t) for _ in range(rng.choice([1, 2, 3]))]
        who = rng.choice([world.buyer, world.agent])
        with boa.env.anchor():
            jid, d, E = r.submitted(pid, t, value)
            with boa.env.prank(world.attacker.address):
                world.escrow.settle(jid, t.as_tuple(), [r.vote(m, jid, d, t, s, E) for m, s in zip(world.evaluators, r0, strict=True)])
            s0 = money.median(r0)
            world.warp(1)  # a challenge comes after round-0 close
            with boa.env.prank(who.address):
                world.facet.challenge(jid, t.as_tuple(), s0, value=t.challenge_bond)
            P = world.job(jid)["deadline"]
            before = r.state(appeal=True)
            votes1 = [r.vote(m, jid, d, t, s, P, round_=1) for m, s in zip(world.appeal_evaluators, r1, strict=False)]
            with boa.env.prank(world.attacker.address):
                world.facet.appeal(jid, t.as_tuple(), votes1)
            warp_to(world, P + 1)
            with boa.env.prank(world.attacker.address):
                world.facet.resolve(jid, t.as_tuple())
            after = r.state(appeal=True)
            ch = "agent" if who is world.agent else "buyer"
            a = money.appeal(t, s0, r0, r1, 2, ch)
            s = money.settle(t, value, a.final_score, 3)
            pens = len(a.penalized) * EVAL_PENALTY
            exp = {"buyer": s.to_buyer, "agent": 0}
            exp[ch] += a.to_challenger
            exp["agent" if ch == "buyer" else "buyer"] += a.to_other
            if a.overturned:
                exp[a.favoured] += pens
            case = (t, value, r0, r1, ch, a)
            assert after["buyer"] - before["buyer"] == exp["buyer"], case
            assert after["agent"] - before["agent"] == exp["agent"], case
            assert after["free"][0] - before["free"][0] == s.to_agent + s.bond_returned, case
            assert after["burned"] - before["burned"] == a.burned + s.burned, case
            assert after["insurance"] - before["insurance"] == s.to_insurance, case
            assert [x - y for x, y in zip(after["appeal"], before["appeal"], strict=True)] == \
                [a.fee_each] * len(r1) + [0] * (3 - len(r1)), case
            assert sum(before["stakes"]) - sum(after["stakes"]) == pens, case

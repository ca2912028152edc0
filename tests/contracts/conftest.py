"""A deployed pactbond on titanoboa with role-named actors and helpers for each step."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boa
import pytest

from pactbond import eip712
from pactbond.models import PactTerms, Vote
from tests.conftest import CONTRACTS, Actor, actor
from tests.contracts.jobs import Escrow, Tracker

ETH = "0x" + "00" * 20
E18 = 10**18
HOUR = 3600
DAY = 24 * HOUR
WINDOW_MAX = 7 * DAY
MIN_ROTATION_DELAY = HOUR
COOLDOWN = 36 * DAY
EVAL_BOND = 10 * E18
EVAL_PENALTY = 5 * E18


@dataclass
class World:
    registry: Any
    escrow: Any
    facet: Any  # the appeals facet's ABI bound to the escrow address
    owner: Actor
    guardian: Actor
    admin: Actor
    pact_owner: Actor
    buyer: Actor
    agent: Actor
    evaluators: list[Actor]
    appeal_evaluators: list[Actor]
    insurance: Actor
    attacker: Actor
    committee_id: int = 0
    appeal_committee_id: int = 0
    pacts: dict[int, PactTerms] = field(default_factory=dict)

    # -- setup helpers --------------------------------------------------------------------
    def fund(self, *who: Actor, amount: int = 1000 * E18) -> None:
        for a in who:
            boa.env.set_balance(a.address, amount)

    def create_committee(self, members: list[Actor], threshold: int, bond: int = EVAL_BOND,
                         penalty: int = EVAL_PENALTY, asset: str = ETH, accept: bool = True,
                         stake: int | None = None, admin: Actor | None = None) -> int:
        admin = admin or self.admin
        with boa.env.prank(admin.address):
            cid = self.registry.create_committee(asset, MIN_ROTATION_DELAY, [m.address for m in members], threshold, bond, penalty)
        vid = self.registry.current_version(cid)
        for m in members:
            if accept:
                with boa.env.prank(m.address):
                    self.registry.accept_version(vid)
            if stake and asset == ETH:
                with boa.env.prank(m.address):
                    self.escrow.stake(ETH, stake, True, value=stake)
        return cid

    def terms(self, **over: Any) -> PactTerms:
        base: dict[str, Any] = dict(
            asset=ETH, committee_id=self.committee_id, appeal_committee_id=self.appeal_committee_id,
            spec_hash=keccak_str("spec:v1"), fail_below_bps=5000, pass_at_bps=8000,
            bond_bps=2000, bond_cap=10 * E18, slash_bps=5000, slash_buyer_bps=5000,
            slash_insurance_bps=3000, slash_burn_bps=2000, insurance=self.insurance.address,
            shadow=False, evaluator_fee=E18 // 100, challenge_bond=E18 // 10, appeal_fee=3 * E18 // 100,
            min_appeal_delta_bps=1000, min_expansion_value=0, accept_window=HOUR, work_window=DAY,
            eval_window=HOUR, challenge_window=HOUR, appeal_window=HOUR, silence_release=False,
            cap_initial=2 * E18, cap_step=E18, cap_max=5 * E18,
        )
        base.update(over)
        return PactTerms(**base)

    def create_pact(self, approve: bool = True, **over: Any) -> tuple[int, PactTerms]:
        t = self.terms(**over)
        with boa.env.prank(self.pact_owner.address):
            pid = self.escrow.create_pact(t.as_tuple())
        self.pacts[pid] = t
        if approve:
            for cid in (t.committee_id, t.appeal_committee_id):
                admin = self.registry.committees(cid)[0]
                with boa.env.prank(admin):
                    self.registry.approve_pact(cid, pid, t.as_tuple())
        return pid, t

    def versions(self, t: PactTerms) -> tuple[int, int]:
        return (self.registry.current_version(t.committee_id),
                self.registry.current_version(t.appeal_committee_id))

    def open(self, pid: int, value: int = E18, buyer: Actor | None = None,
             agent: Actor | None = None) -> int:
        t = self.pacts[pid]
        buyer, agent = buyer or self.buyer, agent or self.agent
        cv, av = self.versions(t)
        with boa.env.prank(buyer.address):
            return self.escrow.open(t.as_tuple(), pid, agent.address, value, cv, av,
                                    value=value + t.evaluator_fee if t.asset == ETH else 0)

    def job(self, jid: int) -> dict[str, Any]:
        j, deliverable, evidence, r0, r1 = self.escrow.job(jid)
        names = ["buyer", "state", "by_agent", "pact_id", "cv", "av", "agent", "reserved",
                 "deadline", "close_at", "value", "fee"]
        out = dict(zip(names, j, strict=True))
        out.update(deliverable=deliverable, evidence=evidence, r0=r0, r1=r1)
        return out

    def terms_of(self, jid: int) -> tuple[Any, ...]:
        f = self.escrow.jobs.fields.get(jid)  # tracked: no view call
        return self.pacts[f.pact_id if f else self.job(jid)["pact_id"]].as_tuple()

    def accept(self, jid: int, agent: Actor | None = None) -> None:
        with boa.env.prank((agent or self.agent).address):
            self.escrow.accept(jid, self.terms_of(jid))

    def submit(self, jid: int, deliverable: bytes | None = None, agent: Actor | None = None) -> bytes:
        d = deliverable or os.urandom(32)
        with boa.env.prank((agent or self.agent).address):
            self.escrow.submit(jid, self.terms_of(jid), d, "")
        return d

    def vote(self, member: Actor, jid: int, score: int, round_: int = 0,
             deadline: int | None = None, evidence: bytes | None = None) -> tuple[Any, ...]:
        f = self.escrow.jobs.fields[jid]  # tracked from the logs (tests.contracts.jobs)
        t = self.pacts[f.pact_id]
        dl = f.deadline if deadline is None else deadline
        v = Vote(job_id=jid, deliverable_hash=f.deliverable, spec_hash=t.spec_hash,
                 score_bps=score, evidence_hash=evidence or keccak_str(f"evidence:{jid}:{member.name}"),
                 round=round_, deadline=dl)
        d = eip712.digest(self.domain(), eip712.vote_struct_hash(v))
        sig = eip712.sign_digest(member.key, d)
        return (member.address, score, v.evidence_hash, dl, sig)

    def domain(self) -> bytes:
        return eip712.domain_separator(boa.env.evm.patch.chain_id, self.escrow.address)

    def settle(self, jid: int, votes: list[tuple[Any, ...]], sender: Actor | None = None) -> None:
        with boa.env.prank((sender or self.attacker).address):
            self.escrow.settle(jid, self.terms_of(jid), votes)

    def appeal(self, jid: int, votes: list[tuple[Any, ...]], sender: Actor | None = None) -> None:
        with boa.env.prank((sender or self.attacker).address):
            self.facet.appeal(jid, self.terms_of(jid), votes)

    def stake_agent(self, amount: int = 10 * E18, agent: Actor | None = None) -> None:
        with boa.env.prank((agent or self.agent).address):
            self.escrow.stake(ETH, amount, False, value=amount)

    def warp(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    def now(self) -> int:
        return boa.env.evm.patch.timestamp


def keccak_str(s: str) -> bytes:
    from eth_hash.auto import keccak

    return keccak(s.encode())


def deploy_pactbond(owner: Actor) -> tuple[Any, Escrow, Escrow]:
    """The registry and the escrow, as (registry, escrow, facet): escrow and facet are one
    tests.contracts.jobs.Escrow over the escrow and its two facets at the escrow's address."""
    with boa.env.prank(owner.address):
        registry = boa.load(str(CONTRACTS / "PactRegistry.vy"), WINDOW_MAX, MIN_ROTATION_DELAY)
        batch = boa.load(str(CONTRACTS / "PactEscrowBatch.vy"), registry.address, COOLDOWN)
        appeals = boa.load(str(CONTRACTS / "PactEscrowAppeals.vy"), registry.address, COOLDOWN, batch.address)
        escrow = boa.load(str(CONTRACTS / "PactEscrow.vy"), registry.address, COOLDOWN, appeals.address)
        registry.set_escrow(escrow.address)
    appeals_at = boa.load_partial(str(CONTRACTS / "PactEscrowAppeals.vy")).at(escrow.address)
    batch_at = boa.load_partial(str(CONTRACTS / "PactEscrowBatch.vy")).at(escrow.address)
    proxy = Escrow(escrow, appeals_at, batch_at)
    proxy.registry = registry
    return registry, proxy, proxy


@pytest.fixture(scope="session")
def _deployed():
    """One deployment per test process (compiling is the slow part); `world` gives every test
    a fresh state on top of it through boa.env.anchor."""
    owner = actor("owner")
    boa.env.set_balance(owner.address, 10**24)
    return deploy_pactbond(owner)


def _tracking_anchor(tracker: Tracker, anchor: Any) -> Any:
    """boa.env.anchor that also rolls back what the tracker learned inside it: a test that
    runs calls in an anchor and leaves it is back at the chain's fields, and so is the proxy."""

    @contextlib.contextmanager
    def tracked() -> Iterator[None]:
        snap = tracker.snapshot()
        try:
            with anchor():
                yield
        finally:
            tracker.restore(snap)

    return tracked


@pytest.fixture
def world(_deployed, monkeypatch) -> World:
    """A fresh world per test: committees of 3 (threshold 2) with staked, accepted members."""
    with boa.env.anchor():
        registry, proxy, _ = _deployed
        # a fresh tracker per test: the anchor rolls the chain back, the fields go with it
        tracker = Tracker()
        tracked = _tracking_anchor(tracker, boa.env._anchor)
        monkeypatch.setattr(type(boa.env), "anchor", property(lambda _env: tracked))
        escrow = facet = Escrow(*proxy.raw, tracker=tracker)
        escrow.registry = registry
        w = World(
            registry=registry, escrow=escrow, facet=facet, owner=actor("owner"),
            guardian=actor("guardian"), admin=actor("committee-admin"),
            pact_owner=actor("pact-owner"), buyer=actor("buyer"), agent=actor("agent"),
            evaluators=[actor(f"evaluator-{i}") for i in range(3)],
            appeal_evaluators=[actor(f"appeal-evaluator-{i}") for i in range(3)],
            insurance=actor("insurance"), attacker=actor("attacker"),
        )
        w.fund(w.owner, w.guardian, w.admin, w.pact_owner, w.buyer, w.agent, w.insurance,
               w.attacker, *w.evaluators, *w.appeal_evaluators)
        with boa.env.prank(w.owner.address):
            registry.set_guardian(w.guardian.address)
        w.committee_id = w.create_committee(w.evaluators, 2, stake=20 * E18)
        w.appeal_committee_id = w.create_committee(w.appeal_evaluators, 2, stake=20 * E18)
        yield w


# -- mock contracts, compiled once per run (each test deploys its own inside its world) ---------

def _mock(name: str) -> Any:
    return boa.load_partial(str(CONTRACTS / "mocks" / f"{name}.vy"))


@pytest.fixture(scope="session")
def erc20_deployer() -> Any:
    return _mock("MockERC20")


@pytest.fixture(scope="session")
def no_return_deployer() -> Any:
    return _mock("MockNoReturnToken")


@pytest.fixture(scope="session")
def hostile_deployer() -> Any:
    return _mock("MockHostileToken")


@pytest.fixture(scope="session")
def reentrant_wallet_deployer() -> Any:
    return _mock("MockReentrantWallet")


@pytest.fixture(scope="session")
def wallet1271_deployer() -> Any:
    return _mock("MockWallet1271")

"""The stateful fuzz's world: one deployment per test module, committees staked and accepted,
and cheap raw-storage reads of every ledger the fuzz tracks (a view call costs ~0.5 ms, a
storage read ~5 us, and the invariants read ~200 words after every step).

A job is one stored word (ADR 011): a commitment to its fields | the current round's lanes. Its
fields come from the logs (tests.contracts.jobs.Tracker, as a client rebuilds them); `job`
checks them against the word and decodes them with the lanes, VERDICT derived as the escrow
derives it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boa
import pytest
from boa.util.abi import Address
from eth_hash.auto import keccak

from pactbond import eip712, jobfields
from pactbond.jobfields import JobFields
from tests.conftest import Actor, actor
from tests.contracts.conftest import COOLDOWN, E18, ETH, MIN_ROTATION_DELAY, deploy_pactbond
from tests.contracts.stateful.model import Model

U128 = 2**128
EV_BOND = 5 * E18
EV_PENALTY = 2 * E18
EV_STAKE = 40 * E18  # room for 19 reservations per member
POOL = 4  # candidates per committee; the first 3 form its first version (threshold 2)


def _h(slot: int, key: int) -> int:
    """Vyper 0.4 HashMap slot: keccak256(slot . key)."""
    return int.from_bytes(keccak(slot.to_bytes(32, "big") + key.to_bytes(32, "big")), "big")


def _a(address: str) -> int:
    return int(str(address), 16)


@dataclass
class FuzzBase:
    registry: Any
    escrow: Any
    facet: Any
    owner: Actor
    guardian: Actor
    admin: Actor
    pact_owner: Actor
    insurance: Actor
    attacker: Actor
    buyers: list[Actor]
    agents: list[Actor]
    pool: list[Actor]  # committee candidates
    appeal_pool: list[Actor]  # appeal committee candidates
    committee_id: int
    appeal_committee_id: int
    domain: bytes
    reader: Reader

    @property
    def tracked(self) -> list[Actor]:
        return [*self.buyers, *self.agents, *self.pool, *self.appeal_pool, self.insurance, self.attacker]

    def by_address(self) -> dict[str, Actor]:
        return {a.address: a for a in [*self.tracked, self.owner, self.guardian, self.admin, self.pact_owner]}

    def base_model(self, now: int) -> Model:
        """The model of the state this fixture leaves (what every example starts from)."""
        m = Model(now=now, cooldown=COOLDOWN, guardian=self.guardian.address, owner=self.owner.address)
        for pool in (self.pool, self.appeal_pool):
            m.setup_committee(self.admin.address, MIN_ROTATION_DELAY, [x.address for x in pool[:3]], 2,
                              EV_BOND, EV_PENALTY)
            for x in pool:
                m.ev_stake[x.address] = EV_STAKE
        return m


class Reader:
    """Raw storage reads of the escrow's ledgers: slots from the compiler's layout, word packing
    as escrow_core.vy declares it (docs/adr/003). The registry, which holds no money, is read
    through its views."""

    def __init__(self, escrow: Any):
        escrow = escrow.raw[0]  # the proxy's PactEscrow: the facets share its layout
        core = escrow.compiler_data.storage_layout["storage_layout"]["core"]
        self.s = {name: v["slot"] for name, v in core.items()}
        self.escrow = Address(escrow.address).canonical_address
        self._cache: dict[tuple[Any, ...], int] = {}

    def slot(self, name: str, *keys: int) -> int:
        k = (name, *keys)
        s = self._cache.get(k)
        if s is None:
            s = self.s[name]
            for key in keys:
                s = _h(s, key)
            self._cache[k] = s
        return s

    def esc(self, name: str, *keys: int, offset: int = 0) -> int:
        return boa.env.evm.vm.state.get_storage(self.escrow, self.slot(name, *keys) + offset)

    # -- decoded ledgers (ETH: asset key 0) --------------------------------------------------------
    def agent_stake(self, who: str) -> tuple[int, int]:
        w = self.esc("agent_stake_word", _a(who), 0)
        return w % U128, w >> 128

    def evaluator_stake(self, who: str) -> tuple[int, int, int, int]:
        # (stake, reserved, pending, unlock) as the view returns it; the stake word holds the
        # stake not pending withdrawal
        w = self.esc("evaluator_stake_word", _a(who), 0)
        p = self.esc("evaluator_pending_word", _a(who), 0)
        return w % U128 + p % U128, w >> 128, p % U128, p >> 128

    def credits(self, who: str) -> int:
        return self.esc("credits", _a(who), 0)

    def burned(self) -> int:
        return self.esc("burned", 0)

    def exposure(self, agent: str, pid: int) -> tuple[int, int]:
        w = self.esc("exposure_word", _a(agent), pid)
        return w % U128, w >> 128

    def agent_counts(self, agent: str) -> list[int]:
        w = self.esc("agent_counts", _a(agent))
        return [(w >> (32 * i)) % 2**32 for i in range(8)]

    def pact_counts(self, pid: int) -> list[int]:
        w = self.esc("pact_counts", pid)
        return [(w >> (32 * i)) % 2**32 for i in range(8)]

    def agent_money(self, agent: str) -> tuple[int, int]:
        w = self.esc("agent_money", _a(agent), 0)
        return w % U128, w >> 128

    def pact_money(self, pid: int) -> tuple[int, int]:
        w = self.esc("pact_money", pid)
        return w % U128, w >> 128

    def job_word(self, jid: int) -> tuple[int, int]:
        """(jobs[jid], lanes_ext[jid]): the commitment | clear lanes, and members 4-15's lanes."""
        return self.esc("jobs", jid), self.esc("lanes_ext", jid)

    def job_state(self, jid: int, f: JobFields, threshold: int) -> int:
        """The job's state as the escrow reads it: the stored state, VERDICT when it is
        SUBMITTED with at least `threshold` counted round-0 votes."""
        word, ext = self.job_word(jid)
        assert f.matches(jid, word, self.esc("pact_hash", f.pact_id).to_bytes(32, "big")), \
            f"job {jid}: the fields rebuilt from the logs do not match its word"
        if f.state == jobfields.SUBMITTED and bin(jobfields.voters(jobfields.lanes_of(word, ext))).count("1") >= threshold:
            return jobfields.VERDICT
        return f.state

    def job(self, jid: int, f: JobFields, threshold: int) -> dict[str, Any]:
        """The job's fields (from the logs, checked against its word) and its lanes: round 0's
        in the clear until a challenge moves them into the fields (r0), round 1's after."""
        word, ext = self.job_word(jid)
        current = jobfields.lanes_of(word, ext)
        challenged = f.state == jobfields.CHALLENGED or f.r0 != 0
        return dict(
            buyer=f.head % 2**160, state=self.job_state(jid, f, threshold), by_agent=f.by_agent,
            pact_id=f.pact_id, cv=f.committee_version, av=f.appeal_version, agent=f.tail % 2**160,
            reserved=f.reserved, deadline=f.deadline, close_at=f.close_at, value=f.value, fee=f.fee,
            deliverable=f.deliverable, r0=lanes(f.r0 if challenged else current),
            r1=lanes(current if challenged else 0),
        )


def lanes(word: int) -> dict[int, int]:
    """Vote lanes: 16 bits per member index, score + 1 (0: no vote)."""
    out = {}
    for i in range(16):
        lane = (word >> (16 * i)) % 65536
        if lane:
            out[i] = lane - 1
    return out


@pytest.fixture(scope="module")
def fuzz_base() -> FuzzBase:
    """Deploy once per module: two committees (3 accepted members each, threshold 2, bond 5 ETH,
    penalty 2 ETH), every candidate staked 40 ETH, funded buyers and agents. Examples run
    inside boa.env.anchor() on top of this state."""
    owner = actor("owner")
    boa.env.set_balance(owner.address, 10**27)
    registry, escrow, facet = deploy_pactbond(owner)
    b = FuzzBase(
        registry=registry, escrow=escrow, facet=facet, owner=owner, guardian=actor("guardian"),
        admin=actor("committee-admin"), pact_owner=actor("pact-owner"), insurance=actor("insurance"),
        attacker=actor("attacker"), buyers=[actor(f"buyer-{i}") for i in range(3)],
        agents=[actor(f"agent-{i}") for i in range(3)],
        pool=[actor(f"evaluator-{i}") for i in range(POOL)],
        appeal_pool=[actor(f"appeal-evaluator-{i}") for i in range(POOL)],
        committee_id=0, appeal_committee_id=0,
        domain=eip712.domain_separator(boa.env.evm.patch.chain_id, escrow.address),
        reader=Reader(escrow),
    )
    for a in b.by_address().values():
        boa.env.set_balance(a.address, 10**27)
    with boa.env.prank(owner.address):
        registry.set_guardian(b.guardian.address)
    for pool in (b.pool, b.appeal_pool):
        with boa.env.prank(b.admin.address):
            cid = registry.create_committee(ETH, MIN_ROTATION_DELAY, [x.address for x in pool[:3]], 2, EV_BOND, EV_PENALTY)
        vid = registry.current_version(cid)
        for x in pool:
            if x in pool[:3]:
                with boa.env.prank(x.address):
                    registry.accept_version(vid)
            with boa.env.prank(x.address):
                escrow.stake(ETH, EV_STAKE, True, value=EV_STAKE)
        if pool is b.pool:
            b.committee_id = cid
        else:
            b.appeal_committee_id = cid
    assert (b.committee_id, b.appeal_committee_id) == (1, 2)
    return b

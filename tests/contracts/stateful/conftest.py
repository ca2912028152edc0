"""The stateful fuzz's world: one deployment per test module, committees staked and accepted,
and cheap raw-storage reads of every ledger the fuzz tracks (a view call costs ~0.5 ms, a
storage read ~5 us, and the invariants read ~200 words after every step)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boa
import pytest
from boa.util.abi import Address
from eth_hash.auto import keccak

from pactbond import eip712
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

    def job_state(self, jid: int) -> int:
        return (self.esc("jobs", jid) >> 160) % 256

    def job(self, jid: int) -> dict[str, Any]:
        head, tail, money = (self.esc("jobs", jid, offset=k) for k in range(3))
        r0, r1 = self.esc("jobs", jid, offset=5), self.esc("jobs", jid, offset=6)
        return dict(
            buyer=head % 2**160, state=(head >> 160) % 256, by_agent=(head >> 168) % 256 == 1,
            pact_id=(head >> 176) % 2**32, cv=(head >> 208) % 2**24, av=head >> 232,
            agent=tail % 2**160, reserved=(tail >> 160) % 2**16, deadline=(tail >> 176) % 2**40,
            close_at=tail >> 216, value=money % U128, fee=money >> 128,
            deliverable=self.esc("jobs", jid, offset=3).to_bytes(32, "big"),
            r0=lanes(r0), r1=lanes(r1),
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

"""ERC-1271 committee members (DESIGN: Votes): ecrecover first, then isValidSignature with a gas
cap and exactly the 32-byte magic value; an address without code never reaches ERC-1271."""

from __future__ import annotations

from types import SimpleNamespace

import boa
import pytest
from eth_utils import to_canonical_address

from pactbond import eip712
from tests.conftest import actor
from tests.contracts.conftest import E18
from tests.contracts.unit.votes.conftest import (
    SETTLED,
    VERDICT,
    events,
    settle,
    submitted_job,
)

MAGIC, WRONG_MAGIC, REVERT, BURN, SHORT, LONG = range(6)
ERC1271_GAS = 250_000


@pytest.fixture
def wallet_job(world, wallet_deployer):
    """A job judged by a committee of [wallet, evaluator 0, evaluator 1] (threshold 2)."""

    def make(**over):
        owner = actor("wallet-owner")
        wallet = wallet_deployer.deploy(owner.address, MAGIC)
        boa.env.set_balance(wallet.address, 100 * E18)
        # the wallet signs as its owner's key; it accepts the version and stakes as itself
        member = SimpleNamespace(address=wallet.address, key=owner.key, name="wallet")
        cid = world.create_committee([member, *world.evaluators[:2]], 2, stake=20 * E18)
        pid, t = world.create_pact(committee_id=cid, **over)
        world.stake_agent()
        jid = world.open(pid)
        world.accept(jid)
        world.submit(jid)
        assert world.job(jid)["reserved"] == 0b111
        return jid, t, wallet, member

    return make


def digest_of(world, vote, jid):
    j = world.job(jid)
    return world.escrow.vote_digest(jid, j["deliverable"], world.pacts[j["pact_id"]].spec_hash, vote[1], vote[2], 0, vote[3])


def child_targets(contract):
    """Addresses the last call of `contract` called (one level down)."""
    return {bytes(c.msg.to) for c in contract._computation.children}


@pytest.mark.parametrize("sig_len", [65, 130, 1040], ids=["65-bytes", "two-sigs-130", "max-1040"])
def test_settle__wallet_owner_signature__vote_counted(world, wallet_job, sig_len):
    jid, _, wallet, member = wallet_job()
    v = world.vote(member, jid, 9000)
    sig = (v[4] * 16)[:sig_len]
    logs = settle(world, jid, [(*v[:4], sig), world.vote(world.evaluators[0], jid, 8000)])
    assert world.job(jid)["state"] == VERDICT
    assert world.job(jid)["r0"] == (9001 | (8001 << 16))
    assert [e.member for e in events(logs, "VoteCounted")] == [wallet.address, world.evaluators[0].address]


def test_settle__wallet_vote_closes_zero_window_round__fee_credited_to_wallet(world, wallet_job):
    jid, t, wallet, member = wallet_job(challenge_window=0, appeal_window=0)
    votes = [world.vote(member, jid, 9000)] + [world.vote(m, jid, 9000) for m in world.evaluators[:2]]
    world.settle(jid, votes)
    assert world.job(jid)["state"] == SETTLED
    assert world.escrow.credits(wallet.address, t.asset) == t.evaluator_fee // 3


def test_is_valid_signature__wallet_owner_signature__calls_the_wallet(world, wallet_job):
    jid, _, wallet, member = wallet_job()
    v = world.vote(member, jid, 9000)
    assert world.escrow.is_valid_signature(wallet.address, digest_of(world, v, jid), v[4]) is True
    assert to_canonical_address(wallet.address) in child_targets(world.escrow)


def test_settle__wallet_signature_by_non_owner__bad_signature(world, wallet_job):
    jid, _, wallet, _ = wallet_job()
    forged = world.vote(SimpleNamespace(address=wallet.address, key=world.attacker.key, name="x"), jid, 9000)
    assert world.escrow.is_valid_signature(wallet.address, digest_of(world, forged, jid), forged[4]) is False
    with boa.reverts("vote: bad signature"):
        world.settle(jid, [forged])


@pytest.mark.parametrize("mode", [WRONG_MAGIC, REVERT, BURN, SHORT, LONG],
                         ids=["wrong-magic", "reverts", "burns-gas", "short-return", "long-return"])
def test_settle__misbehaving_wallet_with_owner_signature__bad_signature(world, wallet_job, mode):
    jid, _, wallet, member = wallet_job()
    wallet.set_mode(mode)
    v = world.vote(member, jid, 9000)
    assert world.escrow.is_valid_signature(wallet.address, digest_of(world, v, jid), v[4]) is False
    with boa.reverts("vote: bad signature"):
        world.settle(jid, [v, world.vote(world.evaluators[0], jid, 9000)])
    assert world.job(jid)["r0"] == 0


def test_is_valid_signature__gas_burning_wallet__bounded_by_the_cap(world, wallet_job):
    jid, _, wallet, member = wallet_job()
    wallet.set_mode(BURN)
    v = world.vote(member, jid, 9000)
    assert world.escrow.is_valid_signature(wallet.address, digest_of(world, v, jid), v[4]) is False
    used = world.escrow._computation.get_gas_used()
    assert ERC1271_GAS < used < ERC1271_GAS + 30_000
    with boa.reverts("vote: bad signature"):
        world.settle(jid, [v])
    assert world.escrow._computation.get_gas_used() < ERC1271_GAS + 150_000


@pytest.mark.parametrize("sig_len", [130, 66, 1040])
def test_settle__eoa_member_with_long_signature__bad_signature(world, sig_len):
    jid, _ = submitted_job(world)
    e0 = world.evaluators[0]
    v = world.vote(e0, jid, 9000)
    sig = (v[4] * 16)[:sig_len]
    assert world.escrow.is_valid_signature(e0.address, digest_of(world, v, jid), sig) is False
    assert child_targets(world.escrow) == set()  # no ecrecover (length != 65) and no ERC-1271 call
    with boa.reverts("vote: bad signature"):
        world.settle(jid, [(*v[:4], sig)])


@pytest.mark.parametrize("member", ["eoa", "identity-precompile"])
def test_is_valid_signature__address_without_code__never_calls_it(world, member):
    """The identity precompile has no code but echoes its calldata, whose first word is the
    isValidSignature selector (= the magic value) followed by the digest: reaching ERC-1271 with
    a digest starting with 28 zero bytes would read as the magic value."""
    addr = world.attacker.address if member == "eoa" else "0x0000000000000000000000000000000000000004"
    assert boa.env.get_code(addr) == b""
    digest = bytes(28) + b"\xab\xcd\xef\x01"
    sig = bytes(65) + bytes(65)  # 130 bytes: the ecrecover path is skipped
    assert world.escrow.is_valid_signature(addr, digest, sig) is False
    assert child_targets(world.escrow) == set()
    sig65 = eip712.sign_digest(world.evaluators[0].key, digest)  # recovers, to someone else
    assert world.escrow.is_valid_signature(addr, digest, sig65) is False
    assert to_canonical_address(addr) not in child_targets(world.escrow)

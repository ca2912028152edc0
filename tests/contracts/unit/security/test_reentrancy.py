"""RELIABILITY C7: a token and an ERC-1271 wallet that re-enter the escrow on every hook.

The hostile token (contracts/mocks/MockHostileToken.vy) calls back into the escrow, as itself,
on every transfer and transferFrom: a main-contract call that would succeed on its own
(withdraw_stake of the token's own ETH stake), a facet call that would succeed on its own
(cancel of a stale job: anyone may), and two views. The wallet
(contracts/mocks/MockReentrantWallet.vy) does the same when it receives ETH, and with static
calls inside isValidSignature, where it answers the magic value only if every re-entry failed.
Each re-entry is shown to succeed outside the hook (the control), then to fail inside every hook
with empty revert data (the shared nonreentrant lock, not a business rule), while the outer call
completes and the books balance to the wei.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boa
import pytest

from pactbond import eip712
from tests.conftest import actor
from tests.contracts.conftest import E18, ETH, HOUR
from tests.contracts.unit.escrow.conftest import token_pact
from tests.contracts.unit.security.conftest import (
    CANCELLED,
    CHALLENGED,
    OPEN,
    SETTLED,
    VERDICT,
    account,
    assert_books,
    call_as,
)

UNIT = E18


def stale_open_job(world: Any) -> int:
    """An ETH job left OPEN past its accept deadline: anyone may cancel it (a facet call that
    would succeed from any caller, the hostile contracts included)."""
    pid, _ = world.create_pact()
    jid = world.open(pid)
    world.warp(HOUR + 1)
    return jid


def reentries(world: Any, me: str, stale: int) -> list[bytes]:
    """Calldata the hostile contract sends back into the escrow (as `me`)."""
    esc, fac = world.escrow, world.facet
    return [
        esc.withdraw_stake.prepare_calldata(ETH, 1, me),  # main contract, state-changing
        fac.cancel.prepare_calldata(stale, world.terms_of(stale)),  # facet (fallback), state-changing
        esc.job_word.prepare_calldata(stale),  # views of PactEscrow: read-only re-entry
        esc.agent_stake.prepare_calldata(me, ETH),
    ]


def controls_succeed(world: Any, actor_contract: Any, payloads: list[bytes], stale: int) -> None:
    """Outside any escrow call each re-entry goes through (so a failure inside a hook is the
    lock's doing)."""
    with boa.env.anchor():
        for p in payloads:
            actor_contract.execute(world.escrow.address, p, 0)
            world.escrow.observe(actor_contract._computation)  # the cancel's JobCancelled
        assert world.job(stale)["state"] == CANCELLED


@pytest.fixture
def hostile(world, hostile_deployer):
    """A hostile token with a pact, committees and stakes in it; the token holds 2 ETH of agent
    stake of its own; a stale OPEN ETH job exists."""
    tok = hostile_deployer.deploy("Hostile", "HOST", 18)
    pid, t = token_pact(world, tok, UNIT)
    boa.env.set_balance(tok.address, 10 * E18)
    tok.execute(world.escrow.address, world.escrow.stake.prepare_calldata(ETH, 2 * E18, False), 2 * E18)
    assert world.escrow.agent_stake(tok.address, ETH) == (2 * E18, 0)
    stale = stale_open_job(world)
    payloads = reentries(world, tok.address, stale)
    controls_succeed(world, tok, payloads, stale)
    tok.arm(world.escrow.address, payloads)
    return SimpleNamespace(token=tok, pid=pid, terms=t, payloads=payloads, stale=stale)


def assert_all_blocked(contract: Any, n_hooks: int, n_payloads: int) -> None:
    assert contract.attempts() == n_hooks * n_payloads
    assert contract.successes() == 0
    assert contract.last_revert() == b""  # the lock's bare revert, not a business reason
    contract.reset_counts()


def books(world: Any, h: Any) -> None:
    extra = (account(h.token.address, "token"),)
    assert_books(world, h.token.address, h.token, extra)
    assert_books(world, ETH, None, extra)


def test_hostile_token__reenters_on_every_pull_and_push__every_attempt_fails(world, hostile):
    h, esc, fac = hostile, world.escrow, world.facet
    tok, t, n = h.token, h.terms, len(h.payloads)
    tok.reset_counts()
    # pull into stake (main contract)
    call_as(world.agent, esc.stake, tok.address, 10 * UNIT, False)
    assert_all_blocked(tok, 1, n)
    call_as(world.appeal_evaluators[0], esc.stake, tok.address, UNIT, True)
    assert_all_blocked(tok, 1, n)
    # pull at open (main contract)
    jid = world.open(h.pid, UNIT)
    assert world.job(jid)["state"] == OPEN
    assert_all_blocked(tok, 1, n)
    books(world, h)
    world.accept(jid)
    world.submit(jid)
    world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators])  # early close
    assert world.job(jid)["state"] == VERDICT
    assert tok.attempts() == 0  # no transfer: no hook
    # pull of the challenge bond (facet)
    world.warp(1)
    call_as(world.buyer, fac.challenge, jid, t.as_tuple(), 9000)
    assert world.job(jid)["state"] == CHALLENGED
    assert_all_blocked(tok, 1, n)
    books(world, h)
    world.appeal(jid, [world.vote(m, jid, 2000, round_=1) for m in world.appeal_evaluators])
    call_as(world.attacker, fac.resolve, jid, t.as_tuple())
    assert world.job(jid)["state"] == SETTLED
    books(world, h)
    # pushes: credits, free stake, evaluator stake after the cooldown (main contract)
    for who in (world.buyer, *world.evaluators, *world.appeal_evaluators):
        if esc.credits(who.address, tok.address):
            call_as(who, esc.withdraw, tok.address)
            assert_all_blocked(tok, 1, n)
    free = esc.agent_stake(world.agent.address, tok.address)[0]
    call_as(world.agent, esc.withdraw_stake, tok.address, free)
    assert_all_blocked(tok, 1, n)
    e = world.evaluators[2]
    call_as(e, esc.request_unstake, tok.address, UNIT)
    world.warp(esc.EVALUATOR_COOLDOWN())
    call_as(e, esc.withdraw_evaluator_stake, tok.address)
    assert_all_blocked(tok, 1, n)
    # nothing the re-entries aimed at moved
    assert esc.agent_stake(tok.address, ETH) == (2 * E18, 0)
    assert world.job(h.stale)["state"] == OPEN
    books(world, h)


def test_hostile_token__fee_switched_on_after_listing__open_and_challenge_refused(world, hostile):
    """C8 fee-on-transfer, a token that turns it on later: every pull checks what arrived."""
    h, esc = hostile, world.escrow
    tok = h.token
    tok.arm(esc.address, [])
    call_as(world.agent, esc.stake, tok.address, 10 * UNIT, False)
    jid = world.open(h.pid, UNIT)
    world.accept(jid)
    world.submit(jid)
    world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators])
    world.warp(1)
    tok.set_fee_bps(1)  # 0.01 %
    with boa.reverts("escrow: fee-on-transfer token"):
        world.open(h.pid, UNIT)
    with boa.reverts("escrow: fee-on-transfer token"):
        call_as(world.agent, esc.stake, tok.address, UNIT, False)
    with boa.reverts("escrow: fee-on-transfer token"):
        call_as(world.buyer, world.facet.challenge, jid, h.terms.as_tuple(), 9000)
    # exits still pay out; the payee bears the token's fee, the books stay exact
    world.warp(HOUR)
    call_as(world.attacker, esc.finalize, jid, h.terms.as_tuple())
    fee_each = esc.credits(world.evaluators[0].address, tok.address)
    before = tok.balanceOf(world.evaluators[0].address)
    call_as(world.evaluators[0], esc.withdraw, tok.address)
    assert tok.balanceOf(world.evaluators[0].address) - before == fee_each - fee_each // 10_000
    books(world, h)


# -- the re-entrant ERC-1271 wallet ---------------------------------------------------------------


@pytest.fixture
def wallet_setup(world, reentrant_wallet_deployer):
    """A re-entrant wallet W (owner key signs) in a committee [W, e0, e1] with a pact on it;
    W holds ETH agent stake of its own; a stale OPEN ETH job exists."""
    owner = actor("reentrant-wallet-owner")
    wal = reentrant_wallet_deployer.deploy(owner.address)
    boa.env.set_balance(wal.address, 100 * E18)
    member = SimpleNamespace(address=wal.address, key=owner.key, name="wallet")
    cid = world.create_committee([member, *world.evaluators[:2]], 2, stake=20 * E18)
    pid, t = world.create_pact(committee_id=cid)
    wal.execute(world.escrow.address, world.escrow.stake.prepare_calldata(ETH, 2 * E18, False), 2 * E18)
    stale = stale_open_job(world)
    payloads = reentries(world, wal.address, stale)
    controls_succeed(world, wal, payloads, stale)
    return SimpleNamespace(wallet=wal, member=member, pid=pid, terms=t, payloads=payloads,
                           stale=stale)


def test_reentrant_wallet__isValidSignature_reenters__vote_counts_only_because_all_failed(world, wallet_setup):
    w = wallet_setup
    wal, esc = w.wallet, world.escrow
    world.stake_agent()
    jid = world.open(w.pid)
    world.accept(jid)
    world.submit(jid)
    vote = world.vote(w.member, jid, 9000)
    j = world.job(jid)
    digest = esc.vote_digest(jid, j["deliverable"], w.terms.spec_hash, 9000, vote[2], 0, vote[3])
    # unarmed the wallet accepts its owner's signature; armed, outside a locked call the view
    # re-entries succeed, so it refuses: the control
    assert esc.is_valid_signature(wal.address, digest, vote[4]) is True
    wal.arm(esc.address, w.payloads)
    assert esc.is_valid_signature(wal.address, digest, vote[4]) is False
    # inside settle (locked) every re-entry fails, so the wallet answers magic and its vote counts
    world.settle(jid, [vote, world.vote(world.evaluators[0], jid, 8000)])
    assert world.job(jid)["state"] == VERDICT
    assert world.job(jid)["r0"] == (9001 | (8001 << 16))
    assert world.job(w.stale)["state"] == OPEN
    assert_books(world, ETH, None, (account(wal.address, "wallet"),))


def test_reentrant_wallet__batch_signature_checked_in_facet__reentries_fail(world, wallet_setup):
    w = wallet_setup
    wal, esc = w.wallet, world.escrow
    world.stake_agent()
    jid = world.open(w.pid)
    world.accept(jid)
    world.submit(jid)
    j = world.job(jid)
    from pactbond.models import Vote

    v = Vote(job_id=jid, deliverable_hash=j["deliverable"], spec_hash=w.terms.spec_hash,
             score_bps=7000, evidence_hash=b"\x07" * 32, round=0, deadline=j["deadline"])
    leaf = eip712.vote_struct_hash(v)
    digest = esc.batch_digest(leaf, 0, j["deadline"])
    sig = eip712.sign_digest(w.member.key, digest)
    wal.arm(esc.address, w.payloads)
    assert esc.is_valid_signature(wal.address, digest, sig) is False  # control: views re-entered
    call_as(world.attacker, world.facet.settle_batch, w.pid, w.terms.as_tuple(), 0,
            [(jid, wal.address, 7000, b"\x07" * 32)], [(wal.address, leaf, j["deadline"], sig)])
    assert world.job(jid)["r0"] == 7001


def test_reentrant_wallet__receiving_eth_reenters__every_attempt_fails(world, wallet_setup):
    w = wallet_setup
    wal, esc = w.wallet, world.escrow
    world.stake_agent()
    jid = world.open(w.pid)
    world.accept(jid)
    world.submit(jid)
    world.settle(jid, [world.vote(w.member, jid, 9000), *[world.vote(m, jid, 9000) for m in world.evaluators[:2]]])
    world.warp(HOUR + 1)
    call_as(world.attacker, esc.finalize, jid, w.terms.as_tuple())
    fee = esc.credits(wal.address, ETH)
    assert fee == w.terms.evaluator_fee // 3
    wal.arm(esc.address, [esc.withdraw.prepare_calldata(ETH, wal.address), *w.payloads])
    n = len(w.payloads) + 1
    before = boa.env.get_balance(wal.address)
    # the withdraw pushes ETH to the wallet, whose receive hook re-enters: withdraw again,
    # withdraw_stake, cancel through the facet, views
    wal.execute(esc.address, esc.withdraw.prepare_calldata(ETH, wal.address), 0)
    assert boa.env.get_balance(wal.address) == before + fee
    assert (wal.attempts(), wal.successes(), wal.last_revert()) == (n, 0, b"")
    wal.execute(esc.address, esc.withdraw_stake.prepare_calldata(ETH, E18, wal.address), 0)
    assert (wal.attempts(), wal.successes()) == (2 * n, 0)
    assert esc.agent_stake(wal.address, ETH) == (E18, 0)  # one E18 left: no extra wei left
    assert esc.credits(wal.address, ETH) == 0
    assert world.job(w.stale)["state"] == OPEN
    assert_books(world, ETH, None, (account(wal.address, "wallet"),))


# finding F2 of docs/security.md, fixed: escrow_core.vy has `# pragma nonreentrancy on`
def test_exported_getters__reentered_mid_call__refused_like_the_escrows_own_views(world, hostile):
    """Read-only re-entry: mid-call (here inside open's pull, after the reservations are
    written and before the job is), a getter must not serve a half-written state."""
    h, esc = hostile, world.escrow
    tok = h.token
    tok.arm(esc.address, [esc.credits.prepare_calldata(world.buyer.address, ETH),
                          esc.burned.prepare_calldata(ETH), esc.job_count.prepare_calldata(),
                          esc.pact_hash.prepare_calldata(h.pid)])
    tok.reset_counts()
    world.open(h.pid, UNIT)
    assert tok.attempts() == 4
    assert tok.successes() == 0

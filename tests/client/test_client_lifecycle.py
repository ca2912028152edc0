"""The client library over a real anvil: full job lifecycles in ETH and in an ERC-20, from key
and keystore wallets, every role's calls, typed events, and no secret in any log line."""

from __future__ import annotations

import logging

import pytest
from eth_hash.auto import keccak

from pactbond import JobState, KeyWallet, Pactbond, money, write_keystore
from pactbond.client import EvaluatorStake
from pactbond.errors import PactbondError, WalletError
from pactbond.events import Feedback, JobOpened, JobSettled, VoteCounted
from tests.client.conftest import BOND, E18, HOUR, PENALTY, World, client, deploy_token, send

PASSWORD = "correct horse battery staple"
PASSWORD_ENV = "PACTBOND_TEST_KEYSTORE_PASSWORD"


def keystore_client(world: World, i: int, tmp_path, monkeypatch) -> Pactbond:
    """Account i's key in an encrypted keystore (mode 0600), opened with the password from an
    environment variable."""
    path = write_keystore(tmp_path / f"account{i}.json", bytes(world.devnet.account(i).key),
                          PASSWORD)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    wallet = KeyWallet.from_keystore(path, password_env=PASSWORD_ENV)
    return Pactbond.connect(world.devnet.url, world.manifest, wallet)


@pytest.fixture(params=["key", "keystore"])
def buyer(request, world, tmp_path, monkeypatch) -> Pactbond:
    if request.param == "key":
        return world.buyer
    return keystore_client(world, 2, tmp_path, monkeypatch)


def test_lifecycle__eth_job_from_key_and_keystore_wallets__settles_and_pays(world, buyer):
    agent, keeper, evals = world.agent, world.keeper, world.evals
    pid = world.pact()
    start = keeper.w3.eth.block_number + 1
    free0 = agent.agent_stake(agent.address).free
    credits0 = {c.address: c.credit(c.address) for c in [buyer, *evals]}
    jid = buyer.open_job(pid, agent.address, E18)
    assert buyer.job(jid).state == JobState.OPEN
    agent.accept(jid)
    assert agent.agent_stake(agent.address).locked == money.bond(world.pacts[pid], E18)
    agent.submit(jid, keccak(b"deliverable"), "https://agent.example/deliverable")
    votes = world.votes(jid, [9000, 8500, 9500])
    for v in votes:
        keeper.verify_vote(v)
    preview = buyer.preview_settlement(jid, 9000)
    keeper.settle(jid, votes[:1])  # one vote: no verdict yet
    assert keeper.job(jid).state == JobState.SUBMITTED
    keeper.add_votes(jid, votes[1:])  # the rest: round 0 closes, a zero window settles at once
    j = keeper.job(jid)
    assert (j.state, j.round0) == (JobState.SETTLED, {0: 9000, 1: 8500, 2: 9500})
    assert agent.agent_stake(agent.address).free == free0 + preview.to_agent
    assert agent.agent_stake(agent.address).locked == 0
    for e in evals:
        assert e.credit(e.address) == credits0[e.address] + preview.fee_each
    assert evals[0].withdraw() == credits0[evals[0].address] + preview.fee_each
    assert evals[0].credit(evals[0].address) == 0
    assert buyer.credit(buyer.address) == credits0[buyer.address] + preview.to_buyer
    if buyer.credit(buyer.address):
        assert buyer.withdraw() == credits0[buyer.address] + preview.to_buyer
    rep = agent.agent_reputation(agent.address)
    assert rep.settled >= 1 and rep.passed >= 1
    # the job's story, as typed events
    evs = list(keeper.events(start, job_id=jid, names=["JobOpened", "VoteCounted", "JobSettled",
                                                        "Feedback"]))
    assert [type(e) for e in evs] == [JobOpened, VoteCounted, VoteCounted, VoteCounted,
                                      JobSettled, Feedback]
    assert (evs[0].buyer, evs[0].agent, evs[0].value) == (buyer.address, agent.address, E18)
    assert [e.member for e in evs[1:4]] == [e.address for e in evals]
    assert (evs[4].score_bps, evs[4].to_agent) == (9000, preview.to_agent)
    # settled in a vote call: Feedback carries that call's first vote's evidence (ADR 011)
    assert (evs[5].agent, evs[5].score_bps, evs[5].evidence_hash) == (
        agent.address, 9000, votes[1].vote.evidence_hash)
    assert keeper.job(jid).evidence_hash == votes[0].vote.evidence_hash  # the first counted


def test_lifecycle__erc20_permit_and_approve__settles_and_withdraws(world, mock_erc20_artifact,
                                                                    tmp_path, monkeypatch):
    owner, admin, agent, keeper = world.owner, world.admin, world.agent, world.keeper
    buyer = keystore_client(world, 2, tmp_path, monkeypatch)
    token = deploy_token(owner.w3, world.devnet.account(0), mock_erc20_artifact, decimals=6)
    usd = token.address
    assert buyer.token_decimals(usd) == 6
    unit = 10 ** buyer.token_decimals(usd)
    owner.set_asset_allowed(usd, True)
    for c in [buyer, agent, *world.evals, *world.appeal]:
        send(owner.w3, world.devnet.account(0), token.functions.mint(c.address, 1000 * unit))
    cid = admin.create_committee([e.address for e in world.evals], 2, 10 * unit, 5 * unit,
                                 asset=usd)
    aid = admin.create_committee([e.address for e in world.appeal], 2, 10 * unit, 5 * unit,
                                 asset=usd)
    for e, committee in [*[(x, cid) for x in world.evals], *[(x, aid) for x in world.appeal]]:
        e.accept_version(e.current_version(committee))
        e.approve(usd, 20 * unit)
        e.stake_evaluator(20 * unit, usd)
        assert e.evaluator_stake(e.address, usd) == EvaluatorStake(
            stake=20 * unit, reserved=0, pending=0, unlock_at=0)
    pid = world.pact(asset=usd, committee_id=cid, appeal_committee_id=aid, bond_cap=10 * unit,
                     evaluator_fee=unit // 100 + 1, cap_initial=10 * unit, cap_max=10 * unit,
                     slash_insurance_bps=0, slash_burn_bps=0, slash_buyer_bps=10_000)
    agent.approve(usd, 5 * unit)
    agent.stake(5 * unit, usd)
    t = world.pacts[pid]
    # a job opened with an EIP-2612 permit in the same call: no approve transaction
    paid = buyer.balance(buyer.address, usd)
    j1 = buyer.open_with_permit(pid, agent.address, 2 * unit)
    assert buyer.balance(buyer.address, usd) == paid - 2 * unit - t.evaluator_fee
    assert buyer.allowance(buyer.address, usd) == 0  # the permit covered exactly value + fee
    # and one after an approve
    buyer.approve(usd, 3 * unit + t.evaluator_fee)
    j2 = buyer.open_job(pid, agent.address, 3 * unit)
    for jid in (j1, j2):
        agent.accept(jid)
        agent.submit(jid, keccak(b"usd deliverable %d" % jid))
    keeper.settle(j1, world.votes(j1, [8000, 9000, 10_000]))  # pass
    keeper.settle(j2, world.votes(j2, [1000, 2000, 3000]))  # fail: refund and slash
    win, fail = money.settle(t, 2 * unit, 9000, 3), money.settle(t, 3 * unit, 2000, 3)
    assert [keeper.job(j).state for j in (j1, j2)] == [JobState.SETTLED] * 2
    owed = win.to_buyer + fail.to_buyer  # the fee remainder of both, the failed job's refund
    assert buyer.credit(buyer.address, usd) == owed
    before = buyer.balance(buyer.address, usd)
    assert buyer.withdraw(usd) == owed
    assert buyer.balance(buyer.address, usd) == before + owed
    stake = agent.agent_stake(agent.address, usd)
    assert (stake.free, stake.locked) == (5 * unit + 2 * unit - fail.slashed, 0)
    agent.withdraw_stake(stake.free, usd)
    assert agent.agent_stake(agent.address, usd).free == 0


def test_lifecycle__cancel_and_expiries__refund_and_default(world):
    buyer, keeper = world.buyer, world.keeper
    pid = world.pact(silence_release=True)
    t = world.pacts[pid]
    start = keeper.w3.eth.block_number + 1
    cancelled = world.job(pid, E18, upto="open")
    buyer.cancel(cancelled)  # the buyer, before acceptance
    no_delivery = world.job(pid, E18, upto="accept")
    silent = world.job(pid, E18, upto="submit")
    keeper.settle(silent, world.votes(silent, [9000]))  # one vote: below the threshold
    stranger_cancel = world.job(pid, E18, upto="open")
    world.warp(HOUR + 1)
    keeper.cancel(stranger_cancel)  # anyone, after the accept deadline
    keeper.expire(no_delivery)
    keeper.expire(silent)
    states = [keeper.job(j).state for j in (cancelled, no_delivery, silent, stranger_cancel)]
    assert states == [JobState.CANCELLED, JobState.EXPIRED_NO_DELIVERY,
                      JobState.EXPIRED_NO_VERDICT, JobState.CANCELLED]
    expired = {e.job_id: e for e in keeper.events(start, names="JobExpired")}
    assert (expired[no_delivery].no_delivery, expired[no_delivery].slashed) == (
        True, money.slashed(t, E18))
    assert (expired[silent].no_delivery, expired[silent].to_agent) == (False, E18)
    fb = [e for e in keeper.events(start, names="Feedback")]
    assert [(e.job_id, e.score_bps) for e in fb] == [(no_delivery, 0)]
    # the silent members' reservations were burned: two of three did not vote
    burned = [e for e in keeper.events(start, names="EvaluatorPenalized") if e.job_id == silent]
    assert {e.member for e in burned} == {world.evals[1].address, world.evals[2].address}


def test_lifecycle__challenge_window__finalize_after_it(world):
    keeper = world.keeper
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR)
    jid = world.job(pid, E18)
    keeper.settle(jid, world.votes(jid, [6000, 7000]))  # threshold: a verdict, round 0 open
    assert keeper.job(jid).state == JobState.VERDICT
    world.warp(2 * HOUR + 2)
    keeper.finalize(jid)
    j = keeper.job(jid)
    assert j.state == JobState.SETTLED
    settled = next(keeper.events(names="JobSettled", job_id=jid))
    assert settled.to_agent == money.settle(world.pacts[pid], E18, 6500, 2).to_agent


def test_events__confirmations__recent_blocks_withheld(world):
    keeper = world.keeper
    pid = world.pact()
    jid = world.job(pid, E18, upto="open")
    head = keeper.w3.eth.block_number
    opened = [e for e in keeper.events(head, names="JobOpened") if e.job_id == jid]
    assert len(opened) == 1 and opened[0].block_number == head
    assert list(keeper.events(head, names="JobOpened", confirmations=1)) == []
    world.devnet.rpc("evm_mine")
    assert [e.job_id for e in keeper.events(head, names="JobOpened", confirmations=1)] == [jid]
    world.buyer.cancel(jid)


def test_roles__evaluator_unstake_rotation_and_admin_transfer(world, devnet):
    e, admin, owner = world.evals[0], world.admin, world.owner
    # evaluator: unstake after the cooldown
    s0 = e.evaluator_stake(e.address)
    e.request_unstake(E18)
    s1 = e.evaluator_stake(e.address)
    assert (s1.stake, s1.pending) == (s0.stake, E18) and s1.unlock_at > e.now()
    world.warp(s1.unlock_at - e.now() + 1)
    before = e.balance(e.address)
    receipt = e.withdraw_evaluator_stake()
    gas = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert e.balance(e.address) == before + E18 - gas
    assert e.evaluator_stake(e.address).stake == s0.stake - E18
    # committee admin: a rotation takes effect after the delay; members accept it
    cid = admin.create_committee([x.address for x in world.evals], 2, BOND, PENALTY)
    v1 = admin.current_version(cid)
    v2 = admin.rotate(cid, [x.address for x in world.evals[:2]], 2, BOND, PENALTY)
    assert admin.committee(cid).pending_version == v2 and admin.current_version(cid) == v1
    world.warp(HOUR + 1)
    assert admin.current_version(cid) == v2
    for x in world.evals[:2]:
        x.accept_version(v2)
    assert admin.roster(v2).accepted == [x.address for x in world.evals[:2]]
    # owner: two-step ownership transfer, and back
    owner.transfer_ownership(admin.address)
    assert owner.owner() == owner.address
    admin.accept_ownership()
    assert owner.owner() == admin.address
    admin.transfer_ownership(owner.address)
    owner.accept_ownership()
    assert owner.owner() == owner.address
    # guardian: pause and unpause
    world.guardian.set_paused(True)
    assert owner.paused()
    world.guardian.set_paused(False)
    assert not owner.paused()


def test_secrets__debug_logs_and_errors__never_show_key_or_password(world, caplog, tmp_path,
                                                                    monkeypatch):
    """A whole lifecycle with a keystore buyer and key-wallet agent and evaluators, logged at
    DEBUG, plus the errors wallets raise: neither the keys nor the password appear."""
    caplog.set_level(logging.DEBUG)
    buyer = keystore_client(world, 2, tmp_path, monkeypatch)
    keys = [bytes(world.devnet.account(i).key).hex() for i in range(13)]
    texts: list[str] = [repr(buyer), str(buyer.wallet), repr(buyer.wallet), repr(world.agent)]
    pid = world.pact()
    jid = buyer.open_job(pid, world.agent.address, E18)
    world.agent.accept(jid)
    world.agent.submit(jid, keccak(b"secret-free deliverable"))
    world.keeper.settle(jid, world.votes(jid, [9000, 9000, 9000]))
    raised: list[BaseException] = []
    bad = [lambda: KeyWallet.from_key(keys[2][:-2]),  # a key one byte short
           lambda: KeyWallet.from_key("0x" + keys[2] + "00"),
           lambda: KeyWallet.from_keystore(tmp_path / "account2.json", password=PASSWORD + "x"),
           lambda: world.agent.withdraw_stake(10**30),
           lambda: buyer.open_job(pid, buyer.address, E18)]
    for f in bad:
        with pytest.raises(PactbondError) as info:
            f()
        raised.append(info.value)
    assert isinstance(raised[0], WalletError) and isinstance(raised[2], WalletError)
    for err in raised:  # the error, its message, and every exception chained to it
        e: BaseException | None = err
        while e is not None:
            texts += [str(e), repr(e)]
            e = e.__cause__ or e.__context__
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert any("accept" in r.getMessage() for r in caplog.records)  # the client did log
    blob = "\n".join(texts).lower()
    for k in keys:
        assert k.lower() not in blob and ("0x" + k).lower() not in blob
    assert PASSWORD.lower() not in blob


def test_connect__keystore_readable_by_others__refused(world, tmp_path):
    path = write_keystore(tmp_path / "k.json", bytes(world.devnet.account(2).key), PASSWORD)
    path.chmod(0o644)
    with pytest.raises(WalletError, match="chmod 600"):
        KeyWallet.from_keystore(path, password=PASSWORD)


def test_client__read_only_connection__refuses_to_send(world, devnet, manifest):
    ro = Pactbond.connect(devnet.url, manifest)
    assert ro.paused() is False
    with pytest.raises(WalletError, match="connect with a wallet"):
        ro.stake(E18)
    assert client(devnet, manifest, 2).address == world.buyer.address
    assert ro.with_wallet(KeyWallet(devnet.account(3))).address == world.agent.address


def test_connect__websocket__same_client_over_ws(devnet, manifest):
    ws = devnet.url.replace("http://", "ws://")
    pb = Pactbond.connect(ws, manifest, KeyWallet(devnet.account(11)))
    before = pb.agent_stake(pb.wallet.address).free
    pb.stake(E18)
    assert pb.agent_stake(pb.wallet.address).free == before + E18

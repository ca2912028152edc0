"""Every typed error from the path that should raise it. A check made before sending raises the
same type, with the same reason, as the contract's revert of the unchecked call (sent here
through `Pactbond.transact`, which skips the checks), and sends nothing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from eth_hash.auto import keccak

from pactbond import KeyWallet, Pactbond, write_keystore
from pactbond.errors import (
    CommitteeChangedError,
    CommitteeUnavailableError,
    ConnectionMismatchError,
    ContractError,
    ContractInputError,
    ExposureCapError,
    InsufficientFundsError,
    InvalidInputError,
    InvalidSignatureError,
    NodeError,
    NotAuthorizedError,
    PausedError,
    TermsError,
    TimingError,
    TokenError,
    UnknownObjectError,
    VoteRejectedError,
    WalletError,
    WrongStateError,
)
from pactbond.models import ZERO_ADDRESS, _bytes32
from pactbond.votes import SignedVote
from tests.client.conftest import BOND, E18, HOUR, PENALTY, client, deploy_token, send

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def refused(pb: Pactbond, cls: type[ContractError], reason: str, checked: Any,
            raw: Any = None, value: int = 0) -> ContractError:
    """`checked()` raises exactly `cls` with `reason` and a hint, sending nothing; `raw` (a Call
    sent without the checks) reverts on-chain with the same reason, mapped to the same type."""
    nonce = pb.w3.eth.get_transaction_count(pb.address)
    with pytest.raises(cls) as info:
        checked()
    assert type(info.value) is cls and info.value.reason == reason and info.value.hint
    assert pb.w3.eth.get_transaction_count(pb.address) == nonce
    if raw is not None:
        with pytest.raises(cls) as sent:
            pb.transact(raw, value=value)
        assert type(sent.value) is cls and sent.value.reason == reason
    return info.value


def raw_open(pb: Pactbond, pid: int, agent: str, value: int) -> tuple[Any, int]:
    t = pb.pact(pid)
    cv, av = pb.current_version(t.committee_id), pb.current_version(t.appeal_committee_id)
    return pb._esc.call("open", t.as_tuple(), pid, agent, value, cv, av), value + t.evaluator_fee


def raw(pb: Pactbond, name: str, jid: int, *args: Any) -> Any:
    """A job call without the client's checks: (job_id, terms, the job's fields, *args)."""
    return pb._job_call(name, pb.job(jid), *args)


# -- input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [1.5, 1e18, Decimal("1000000000000000000"),
                                    "1000000000000000000", True, None])
def test_amounts__float_decimal_str__InvalidInputError(world, amount):
    pid = world.pact()
    nonce = world.buyer.w3.eth.get_transaction_count(world.buyer.address)
    for call in (lambda: world.buyer.open_job(pid, world.agent.address, amount),
                 lambda: world.agent.stake(amount),
                 lambda: world.agent.withdraw_stake(amount)):
        with pytest.raises(InvalidInputError) as info:
            call()
        assert type(info.value) is InvalidInputError and "int" in str(info.value)
    assert world.buyer.w3.eth.get_transaction_count(world.buyer.address) == nonce


def test_open_job__buyer_is_agent_or_zero_value__ContractInputError(world):
    buyer, pid = world.buyer, world.pact()
    call, value = raw_open(buyer, pid, buyer.address, E18)
    refused(buyer, ContractInputError, "escrow: buyer is agent",
            lambda: buyer.open_job(pid, buyer.address, E18), call, value)
    call, value = raw_open(buyer, pid, world.agent.address, 0)
    err = refused(buyer, ContractInputError, "escrow: zero value",
                  lambda: buyer.open_job(pid, world.agent.address, 0), call, value)
    assert isinstance(err, InvalidInputError)  # a malformed argument, whether checked or reverted


# -- who and when ----------------------------------------------------------------------------


def test_accept__not_the_agent__NotAuthorizedError(world):
    jid = world.job(world.pact(), E18, upto="open")
    refused(world.buyer, NotAuthorizedError, "escrow: not agent",
            lambda: world.buyer.accept(jid), raw(world.buyer, "accept", jid))
    refused(world.buyer, NotAuthorizedError, "admin: not owner",
            lambda: world.buyer.set_asset_allowed(world.owner.escrow.address, True),
            world.buyer._reg.call("set_asset_allowed", world.owner.escrow.address, True))
    world.buyer.cancel(jid)


def test_submit__job_still_open__WrongStateError(world):
    jid = world.job(world.pact(), E18, upto="open")
    refused(world.agent, WrongStateError, "escrow: not accepted",
            lambda: world.agent.submit(jid, keccak(b"x")),
            raw(world.agent, "submit", jid, keccak(b"x")))
    world.buyer.cancel(jid)


def test_cancel__stranger_before_accept_deadline__TimingError(world):
    jid = world.job(world.pact(), E18, upto="open")
    refused(world.keeper, TimingError, "escrow: accept window open",
            lambda: world.keeper.cancel(jid), raw(world.keeper, "cancel", jid))
    e = world.evals[0]
    e.request_unstake(E18)
    refused(e, TimingError, "stake: cooldown not over", lambda: e.withdraw_evaluator_stake(),
            e._esc.call("withdraw_evaluator_stake", ZERO_ADDRESS, e.address))
    world.buyer.cancel(jid)


# -- money -----------------------------------------------------------------------------------


def test_withdraw_and_accept__no_credit_or_stake__InsufficientFundsError(world, devnet, manifest):
    k = world.keeper
    refused(k, InsufficientFundsError, "escrow: nothing to withdraw", lambda: k.withdraw(),
            k._esc.call("withdraw", ZERO_ADDRESS, k.address))
    poor = client(devnet, manifest, 13)  # an agent with no stake
    jid = world.buyer.open_job(world.pact(), poor.address, E18)
    refused(poor, InsufficientFundsError, "escrow: agent stake below bond",
            lambda: poor.accept(jid), raw(poor, "accept", jid))
    refused(poor, InsufficientFundsError, "stake: exceeds free stake",
            lambda: poor.withdraw_stake(1), poor._esc.call("withdraw_stake", ZERO_ADDRESS, 1,
                                                           poor.address))
    world.buyer.cancel(jid)


def test_stake__token_not_approved__TokenError(world, mock_erc20_artifact):
    token = deploy_token(world.owner.w3, world.devnet.account(0), mock_erc20_artifact)
    send(world.owner.w3, world.devnet.account(0), token.functions.mint(world.agent.address, 10))
    a = world.agent
    refused(a, TokenError, "escrow: token transfer failed", lambda: a.stake(10, token.address),
            a._esc.call("stake", token.address, 10, False))
    a.approve(token.address, 10)
    refused(a, TokenError, "escrow: token transfer failed", lambda: a.stake(11, token.address),
            a._esc.call("stake", token.address, 11, False))  # more than the balance
    a.stake(10, token.address)
    assert a.agent_stake(a.address, token.address).free == 10


def test_accept__above_exposure_cap__ExposureCapError(world):
    pid = world.pact(cap_initial=3 * E18, cap_max=5 * E18)
    first, second = (world.job(pid, 2 * E18, upto="open") for _ in range(2))
    world.agent.accept(first)
    cap = world.agent.exposure(world.agent.address, pid)
    assert (cap.open_value, cap.cap) == (2 * E18, 3 * E18)
    refused(world.agent, ExposureCapError, "escrow: exposure cap",
            lambda: world.agent.accept(second), raw(world.agent, "accept", second))
    world.buyer.cancel(second)


# -- committees ------------------------------------------------------------------------------


def test_open_job__stale_committee_versions__CommitteeChangedError(world):
    members = [e.address for e in world.evals]
    cid = world.admin.create_committee(members, 2, BOND, PENALTY)
    old = world.admin.current_version(cid)
    for e in world.evals:
        e.accept_version(old)
    pid = world.pact(committee_id=cid)
    expected = (old, world.admin.current_version(world.aid))
    world.buyer.cancel(world.buyer.open_job(pid, world.agent.address, E18, expected))
    new = world.admin.rotate(cid, members, 2, BOND, PENALTY)
    world.warp(HOUR + 1)
    for e in world.evals:
        e.accept_version(new)
    t = world.pacts[pid]
    call = world.buyer._esc.call("open", t.as_tuple(), pid, world.agent.address, E18, *expected)
    refused(world.buyer, CommitteeChangedError, "escrow: committee changed",
            lambda: world.buyer.open_job(pid, world.agent.address, E18, expected), call,
            E18 + t.evaluator_fee)
    jid = world.buyer.open_job(pid, world.agent.address, E18, (new, expected[1]))
    assert world.buyer.job(jid).committee_version == new
    world.buyer.cancel(jid)


def test_open_job__committee_cannot_back_the_job__CommitteeUnavailableError(world):
    buyer, agent = world.buyer, world.agent
    pid = world.pact()
    call, value = raw_open(buyer, pid, agent.address, 20 * E18)  # above 2 x 5 ETH penalty
    refused(buyer, CommitteeUnavailableError, "escrow: value above committee stake",
            lambda: buyer.open_job(pid, agent.address, 20 * E18), call, value)
    e = world.evals[0]  # an evaluator as buyer
    call, value = raw_open(e, pid, agent.address, E18)
    refused(e, CommitteeUnavailableError, "escrow: party is evaluator",
            lambda: e.open_job(pid, agent.address, E18), call, value)
    # members whose stake cannot back the job: bond above their stake, or penalty reserved
    members = [x.address for x in world.evals]
    for bond, penalty, reason in [(200 * E18, 5 * E18, "escrow: member stake below bond"),
                                  (60 * E18, 60 * E18, "escrow: member stake reserved")]:
        cid = world.admin.create_committee(members, 2, bond, penalty)
        for x in world.evals:
            x.accept_version(x.current_version(cid))
        p = world.pact(committee_id=cid)
        if penalty == 60 * E18:  # one job reserves 60 of each member's 100 ETH
            first = buyer.open_job(p, agent.address, E18)
        call, value = raw_open(buyer, p, agent.address, E18)
        refused(buyer, CommitteeUnavailableError, reason,
                lambda p=p: buyer.open_job(p, agent.address, E18), call, value)
    buyer.cancel(first)
    unapproved = world.owner.create_pact(world.terms())
    call, value = raw_open(buyer, unapproved, agent.address, E18)
    refused(buyer, CommitteeUnavailableError, "escrow: pact not approved",
            lambda: buyer.open_job(unapproved, agent.address, E18), call, value)


def test_open_job__paused__PausedError(world):
    pid = world.pact()
    world.guardian.set_paused(True)
    try:
        call, value = raw_open(world.buyer, pid, world.agent.address, E18)
        refused(world.buyer, PausedError, "escrow: paused",
                lambda: world.buyer.open_job(pid, world.agent.address, E18), call, value)
    finally:
        world.guardian.set_paused(False)


def test_create__incoherent_terms__TermsError(world):
    bad = world.terms(fail_below_bps=9000)
    err = refused(world.owner, TermsError, "pact: fail_below_bps above pass_at_bps",
                  lambda: world.owner.create_pact(bad),
                  world.owner._esc.call("create_pact", bad.as_tuple()))
    assert isinstance(err, ValueError)
    members = [e.address for e in world.evals]
    refused(world.admin, TermsError, "committee: penalty above bond",
            lambda: world.admin.create_committee(members, 2, E18, 2 * E18),
            world.admin._reg.call("create_committee", ZERO_ADDRESS, HOUR, members, 2, E18,
                                  2 * E18))


# -- votes -----------------------------------------------------------------------------------


def test_settle__vote_that_does_not_count__VoteRejectedError(world):
    k = world.keeper
    jid = world.job(world.pact(), E18)
    outsider = world.appeal[0]  # an appeal member signing a round-0 vote
    bad = outsider.sign_vote(world.evals[0].vote_for(jid, 9000, keccak(b"e")))
    call = raw(k, "settle", jid, [bad.as_tuple()])
    refused(k, VoteRejectedError, "vote: member not reserved", lambda: k.settle(jid, [bad]), call)
    with pytest.raises(VoteRejectedError, match="vote: member not reserved"):
        k.verify_vote(bad)
    first = world.votes(jid, [9000])
    m, _, ev, deadline, sig = first[0].as_tuple()
    too_high = (m, 10_001, ev, deadline, sig)  # a raw SignedVote tuple, as a relayer gets it
    refused(k, VoteRejectedError, "vote: score above 10000", lambda: k.settle(jid, [too_high]),
            raw(k, "settle", jid, [too_high]))
    k.settle(jid, first)
    refused(k, VoteRejectedError, "vote: duplicate vote", lambda: k.settle(jid, first),
            raw(k, "settle", jid, [first[0].as_tuple()]))


def test_settle__more_than_4_votes__InvalidInputError_before_any_send(world):
    """The escrow takes at most 4 votes a call (ADR 011; its ABI decoder would refuse a fifth
    with no reason): the client says so, and nothing is sent or counted."""
    k = world.keeper
    jid = world.job(world.pact(), E18)
    votes = world.votes(jid, [9000])
    nonce = k.w3.eth.get_transaction_count(k.address)
    with pytest.raises(InvalidInputError, match="at most 4 votes per call"):
        k.settle(jid, votes * 5)
    assert k.w3.eth.get_transaction_count(k.address) == nonce
    assert k.job(jid).round0 == {}


def test_settle__revoked_key__VoteRejectedError(world, devnet, manifest):
    member = client(devnet, manifest, 13)
    cid = world.admin.create_committee([*[e.address for e in world.evals], member.address], 2,
                                       BOND, PENALTY)
    for x in [*world.evals, member]:
        x.accept_version(x.current_version(cid))
    member.stake_evaluator(20 * E18)
    jid = world.job(world.pact(committee_id=cid), E18)
    vote = member.sign_vote(member.vote_for(jid, 9000, keccak(b"e")))
    world.keeper.verify_vote(vote)
    member.revoke_key()
    refused(world.keeper, VoteRejectedError, "vote: key revoked",
            lambda: world.keeper.settle(jid, [vote]), raw(world.keeper, "settle", jid,
                                                          [vote.as_tuple()]))
    refused(member, WrongStateError, "committee: already revoked", member.revoke_key,
            member._reg.call("revoke_key"))


def test_settle__high_s_or_foreign_signature__InvalidSignatureError(world):
    k = world.keeper
    jid = world.job(world.pact(), E18)
    good = world.votes(jid, [9000])[0]
    r, s, v = good.signature[:32], int.from_bytes(good.signature[32:64], "big"), good.signature[64]
    twin = good.model_copy(update={"signature": r + (N - s).to_bytes(32, "big") + bytes([55 - v])})
    foreign = good.model_copy(update={"signature": world.evals[1].sign_vote(good.vote).signature})
    for bad in (twin, foreign):
        err = refused(k, InvalidSignatureError, "vote: bad signature",
                      lambda bad=bad: k.settle(jid, [bad]),
                      raw(k, "settle", jid, [bad.as_tuple()]))
        assert isinstance(err, VoteRejectedError) and isinstance(err, InvalidInputError)
        with pytest.raises(InvalidSignatureError):
            k.verify_vote(bad)
    other = SignedVote(vote=good.vote.model_copy(update={"score_bps": 1}), member=good.member,
                       signature=good.signature)  # the signature of another score
    with pytest.raises(InvalidSignatureError, match="vote: bad signature"):
        k.verify_vote(other)
    k.settle(jid, [good])


# -- reads, connection, wallets, node ---------------------------------------------------------


def test_reads__unknown_objects__UnknownObjectError(world):
    for call, reason in [(lambda: world.keeper.job(10**6), "escrow: unknown job"),
                         (lambda: world.keeper.pact(10**6), "escrow: unknown pact"),
                         (lambda: world.keeper.roster(10**6), "committee: unknown version")]:
        with pytest.raises(UnknownObjectError) as info:
            call()
        assert info.value.reason == reason and isinstance(info.value, LookupError)
    with pytest.raises(UnknownObjectError):
        world.keeper.accept(10**6)


def test_connect__wrong_chain_or_code__ConnectionMismatchError(devnet, manifest):
    bad = manifest.model_copy(update={"chain_id": manifest.chain_id + 1})
    with pytest.raises(ConnectionMismatchError, match="chain"):
        Pactbond.connect(devnet.url, bad)
    rec = manifest.contracts["PactEscrow"].model_copy(update={"code_hash": "0x" + "ab" * 32})
    wrong_code = manifest.model_copy(update={"contracts": {**manifest.contracts,
                                                           "PactEscrow": rec}})
    with pytest.raises(ConnectionMismatchError, match="code hash"):
        Pactbond.connect(devnet.url, wrong_code)
    with pytest.raises(InvalidInputError):
        Pactbond.connect("127.0.0.1:8545", manifest)


def test_wallets__bad_key_password_or_env__WalletError(world, tmp_path, monkeypatch):
    with pytest.raises(WalletError, match="valid private key"):
        KeyWallet.from_key("0x1234")
    monkeypatch.delenv("PACTBOND_NO_SUCH_KEY", raising=False)
    with pytest.raises(WalletError, match="PACTBOND_NO_SUCH_KEY"):
        KeyWallet.from_env("PACTBOND_NO_SUCH_KEY")
    (tmp_path / "k.json").write_text("{}")
    (tmp_path / "k.json").chmod(0o644)  # an existing file keeps its mode on O_CREAT
    path = write_keystore(tmp_path / "k.json", bytes(world.devnet.account(2).key), "pw")
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(WalletError, match="wrong password"):
        KeyWallet.from_keystore(path, password="not it")
    doc = json.loads(path.read_text())
    doc["crypto"]["ciphertext"] = "zz"  # damaged: no password opens it
    path.write_text(json.dumps(doc))
    with pytest.raises(WalletError, match=r"is malformed: its encrypted key is damaged$"):
        KeyWallet.from_keystore(path, password="pw")
    with pytest.raises(WalletError, match="does not exist"):
        KeyWallet.from_keystore(tmp_path / "missing.json", password="pw")
    monkeypatch.setenv("PACTBOND_TEST_KEY", "0x" + bytes(world.devnet.account(2).key).hex())
    assert KeyWallet.from_env("PACTBOND_TEST_KEY").address == world.buyer.address


class _GarbageWallet:
    """Signs nothing the node can decode."""

    def __init__(self, address: str) -> None:
        self.address = address

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        return b"\x02\xff\x00garbage"

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def sign_digest(self, digest: bytes) -> bytes:
        raise NotImplementedError


def test_transact__node_refuses__NodeError_or_InsufficientFunds(world, devnet, manifest):
    pb = Pactbond.connect(devnet.url, manifest, _GarbageWallet(world.agent.address))
    with pytest.raises(NodeError, match="refused"):
        pb.stake(1)
    broke = Pactbond.connect(devnet.url, manifest, KeyWallet.from_key("0x" + "11" * 32))
    with pytest.raises(InsufficientFundsError) as info:
        broke.stake(1)  # no ETH at all
    assert info.value.reason == "insufficient funds"
    with pytest.raises(InsufficientFundsError, match="insufficient funds"):
        broke.transact(broke._esc.call("stake", ZERO_ADDRESS, 1, False), value=1)


def test_transact__unknown_revert__ContractError_with_raw_reason(world, mock_erc20_artifact):
    token = deploy_token(world.owner.w3, world.devnet.account(0), mock_erc20_artifact)
    expired = token.functions.permit(world.buyer.address, world.buyer.escrow.address, 1, 0, 27,
                                     b"\x01" * 32, b"\x01" * 32)
    with pytest.raises(ContractError) as info:
        world.buyer.transact(expired)
    assert type(info.value) is ContractError and info.value.reason == "token: permit expired"


@pytest.mark.parametrize("text", ["0x" + "ab " * 32, "0x" + "ab" * 31 + "a", "zz" * 32,
                                  "0x" + "ab" * 31 + "\u0661\u0662"])
def test_hash32__whitespace_odd_or_non_hex__refused(text):
    """bytes.fromhex skips whitespace: "ab ab ..." used to pass for a 32-byte hash."""
    with pytest.raises(ValueError, match="not a 32-byte hex value"):
        _bytes32(text)


@pytest.mark.parametrize("error, kind, text", [
    ({"code": -32005, "message": "daily request count exceeded, request rate limited",
      "data": {"see": "https://infura.io/dashboard"}}, NodeError, "request rate limited"),
    ({"code": -32000, "message": "header not found", "data": None}, NodeError,
     "header not found"),
    ({"code": 3, "message": "execution reverted: escrow: not open", "data": "0x08c379a0"},
     WrongStateError, "escrow: not open"),
])
def test_node_error_reply_taken_for_a_revert_by_web3__node_error(error, kind, text):
    """web3 raises ContractLogicError for some of a provider's own error replies; they are the
    node's trouble (retry), not a contract's verdict on the call."""
    from web3._utils.error_formatters_utils import raise_contract_logic_error_on_revert
    from web3.exceptions import ContractLogicError

    with pytest.raises(ContractLogicError) as info:
        raise_contract_logic_error_on_revert({"jsonrpc": "2.0", "id": 1, "error": error})
    err = Pactbond._error(info.value)
    assert type(err) is kind and text in str(err)

"""`pactbond` in-process against a private anvil: every command on good input with its effect
read back from the chain through the client library, --json parsed, the confirmation prompt,
and each kind of bad input ending in one exact line on stderr with exit code 1 (refused) or 2
(usage) and no traceback."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from pactbond import JobState
from pactbond.cli.common import fmt_amount, parse_amount
from tests.cli.conftest import (
    ADMIN,
    AGENT,
    APPEAL,
    BUYER,
    EVALS,
    KEEPER,
    KEYSTORE_PASSWORD,
    MISSING_AMOUNT,
    OWNER,
    SPARE,
    Cli,
    addr,
    error_line,
    key,
)
from tests.client.conftest import E18, HOUR, World, deploy_token, send

GUARDIAN = 10  # never a party, member or payee: holds no credit
DEV = APPEAL[-1]  # `--dev-account` reaches the devnet's accounts 0-9 only
EVIDENCE = "0x" + "11" * 32
SPEC = {"pactbond_spec": 1, "name": "cli-test", "evaluator": {"name": "reference", "version": "1"},
        "thresholds": {"fail_below_bps": 5000, "pass_at_bps": 8000}}
TYPO = addr(AGENT)[:4] + addr(AGENT)[4].swapcase() + addr(AGENT)[5:]  # 0x90f7...
UNKNOWN_JOB = "pactbond: escrow: unknown job — no job with that id on this deployment"


def spec_bytes(fail_below: int = 5000, pass_at: int = 8000) -> bytes:
    return json.dumps({**SPEC, "thresholds": {"fail_below_bps": fail_below,
                                              "pass_at_bps": pass_at}}).encode()


def spec_pact(world: World, cwd: Path, data: bytes | None = None, **over: Any) -> int:
    """A pact (made by the library, approved by both committees) whose spec document sits in
    ./specs, where `job open` looks by default."""
    data = data if data is not None else spec_bytes()
    (cwd / "specs").mkdir(exist_ok=True)
    (cwd / "specs" / f"{keccak(data).hex()[:8]}.json").write_bytes(data)
    return world.pact(spec_hash=keccak(data), **over)


def pact_doc(world: World, spec: str = "spec.json", **over: Any) -> dict[str, Any]:
    """Pact terms as a pact file holds them: `spec: FILE` instead of spec_hash."""
    doc = world.terms(**over).model_dump()
    del doc["spec_hash"]
    return {**doc, "spec": spec}


def write_doc(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc) if path.suffix == ".json" else yaml.safe_dump(doc))
    return path


def bad_parameter(line: str, param: str) -> str:
    """A usage error's message without "pactbond: " and "Invalid value for PARAM: " (click
    names the parameter only through format_message, which main() may come to use)."""
    msg = line.removeprefix("pactbond: ")
    return msg.removeprefix(f"Invalid value for {param}: ")


def pact_count(world: World) -> int:
    return len(list(world.keeper.events(names="PactCreated")))


def state(world: World, jid: int) -> JobState:
    return world.keeper.job(jid).state


def verdict(world: World, pid: int, scores: tuple[int, ...] = (9000, 9000, 9000),
            value: int = E18 // 2) -> int:
    """A job with a round-0 verdict (every member voting closes round 0 at once)."""
    jid = world.job(pid, value)
    world.keeper.settle(jid, world.votes(jid, list(scores)))
    world.warp(1)  # challenges start after round-0 close, in a later block
    return jid


# -- connection and usage ----------------------------------------------------------------------


def test_version_and_help__exit_0(cli: Cli):
    r = cli("--version", conn=False)
    assert (r.code, r.out.startswith("pactbond, version ")) == (0, True)
    r = cli("job", "--help", conn=False)
    assert r.code == 0 and all(c in r.out for c in ("open", "accept", "submit", "cancel",
                                                     "show", "list"))


def test_unknown_command__exit_2(cli: Cli):
    r = cli("jobs", conn=False)
    assert (r.code, error_line(r)) == (2, "pactbond: No such command 'jobs'. "
                                          "(see `pactbond --help`)")


def test_missing_argument__exit_2(cli: Cli):
    r = cli("stake", "deposit", *key(AGENT))
    assert (r.code, error_line(r) in MISSING_AMOUNT) == (2, True)


def test_no_node__says_devnet_up_or_rpc_url(cli: Cli):
    r = cli("job", "list", conn=False)
    assert (r.code, error_line(r)) == (
        1, "pactbond: no node: run `pactbond devnet up`, or pass --rpc-url and --manifest")


def test_manifest_missing__says_deploy_first(cli: Cli, devnet):
    r = cli("job", "list", "--rpc-url", devnet.url, "--manifest", "nope.json", conn=False)
    assert (r.code, error_line(r)) == (
        1, "pactbond: manifest nope.json does not exist: deploy first (`pactbond devnet up`)")


@pytest.mark.parametrize("content, why", [
    (b'{"chain_id": 1}', "network: Field required"),
    (b"not json", "Invalid JSON: expected ident at line 1 column 2"),
    (b"\xff\xfe\x00\x81", "not a text file"),
])
def test_manifest_malformed__one_line(cli: Cli, devnet, tmp_path, content, why):
    (tmp_path / "m.json").write_bytes(content)
    r = cli("job", "list", "--rpc-url", devnet.url, "--manifest", "m.json", conn=False)
    assert (r.code, error_line(r)) == (
        1, f"pactbond: manifest m.json is not a deployment manifest ({why}): pass the "
           "deployments/<network>.json that `devnet up` or `deploy` wrote")


def test_node_unreachable__names_the_url(cli: Cli, manifest_path):
    url = "http://127.0.0.1:9"  # discard: nothing answers JSON-RPC there
    r = cli("job", "list", "--rpc-url", url, "--manifest", manifest_path, conn=False)
    assert (r.code, error_line(r)) == (
        1, f"pactbond: cannot reach the node at {url}: start it (`pactbond devnet up`) or pass "
           "the right --rpc-url")


def test_rpc_url_without_scheme__refused(cli: Cli, manifest_path):
    r = cli("job", "list", "--rpc-url", "127.0.0.1:8545", "--manifest", manifest_path,
            conn=False)
    assert (r.code, error_line(r)) == (
        1, "pactbond: RPC URL must start with http(s):// or ws(s)://: '127.0.0.1:8545'")


# -- wallets -----------------------------------------------------------------------------------

SENDING = {
    "stake deposit": ["stake", "deposit", "1", "--yes"],
    "stake unstake": ["stake", "unstake", "1", "--yes"],
    "stake withdraw": ["stake", "withdraw", "1", "--yes"],
    "committee create": ["committee", "create", "--members", addr(SPARE), "--threshold", "1",
                         "--bond", "1", "--penalty", "1"],
    "committee rotate": ["committee", "rotate", "1", "--members", addr(SPARE), "--threshold",
                         "1", "--bond", "1", "--penalty", "1"],
    "committee accept": ["committee", "accept", "1"],
    "committee approve-pact": ["committee", "approve-pact", "1", "1"],
    "committee revoke": ["committee", "revoke", "--yes"],
    "job open": ["job", "open", "1", "--agent", addr(AGENT), "--value", "1", "--yes"],
    "job accept": ["job", "accept", "1"],
    "job submit": ["job", "submit", "1", "--hash", EVIDENCE],
    "job cancel": ["job", "cancel", "1", "--yes"],
    "vote sign": ["vote", "sign", "1", "5000", "--evidence", EVIDENCE],
    "vote sign-batch": ["vote", "sign-batch", f"1:5000:{EVIDENCE}"],
    "challenge": ["challenge", "1", "--yes"],
    "keeper run": ["keeper", "run", "--once"],
    "withdraw": ["withdraw", "--yes"],
}


@pytest.mark.parametrize("name", SENDING)
def test_sending_command__no_wallet__usage_exit_2(cli: Cli, name):
    r = cli(*SENDING[name])
    assert (r.code, error_line(r)) == (
        2, "pactbond: this command sends a transaction: pass --key-env VAR, --keystore FILE or "
           f"--account ALIAS (see `pactbond {name} --help`)")


def test_pact_create_and_vote_submit__no_wallet__usage_exit_2(cli: Cli, world, tmp_path):
    (tmp_path / "spec.json").write_bytes(spec_bytes())
    write_doc(tmp_path / "pact.yaml", pact_doc(world))
    r = cli("pact", "create", "pact.yaml", "--yes")
    assert (r.code, "sends a transaction" in error_line(r)) == (2, True)
    jid = world.job(world.pact())
    r = cli("vote", "sign", jid, 5000, "--evidence", EVIDENCE, "--out", "v.json", *key(EVALS[0]))
    assert r.code == 0
    r = cli("vote", "submit", "v.json")
    assert (r.code, "sends a transaction" in error_line(r)) == (2, True)
    assert state(world, jid) == JobState.SUBMITTED


@pytest.mark.parametrize("wallets", [
    ["--key-env", "A", "--keystore", "ks.json"],
    ["--key-env", "A", "--dev-account", "3"],
    ["--keystore", "ks.json", "--account", "someone"],
])
def test_two_wallets__usage_exit_2(cli: Cli, world, wallets):
    before = world.agent.agent_stake(addr(AGENT)).free
    r = cli("stake", "deposit", "1", "--yes", *wallets)
    assert (r.code, error_line(r)) == (
        2, "pactbond: choose one wallet: --key-env, --keystore, --account or --dev-account "
           "(see `pactbond stake deposit --help`)")
    assert world.agent.agent_stake(addr(AGENT)).free == before


def test_keystore__with_password_env__sends(cli: Cli, world, keystore_source, keystore,
                                            monkeypatch):
    assert stat.S_IMODE(keystore_source.stat().st_mode) == 0o600  # as write_keystore makes it
    ks = keystore.name
    monkeypatch.setenv("PB_PW", KEYSTORE_PASSWORD)
    before = world.keeper.agent_stake(addr(SPARE)).free
    r = cli("stake", "deposit", "0.25", "--keystore", ks, "--password-env", "PB_PW", "--yes")
    assert (r.code, r.out) == (0, "staked 0.25 ETH (agent)\n")
    assert world.keeper.agent_stake(addr(SPARE)).free == before + E18 // 4


def test_keystore__wrong_password__exit_1_password_not_echoed(cli: Cli, world, keystore,
                                                               monkeypatch):
    ks = keystore.name
    monkeypatch.setenv("PB_PW", "Wr0ng-Passw0rd-xyz")
    before = world.keeper.agent_stake(addr(SPARE)).free
    r = cli("stake", "deposit", "0.25", "--keystore", ks, "--password-env", "PB_PW", "--yes")
    assert (r.code, error_line(r)) == (1, f"pactbond: wrong password for keystore {ks}")
    assert "Wr0ng-Passw0rd-xyz" not in r.out + r.err and KEYSTORE_PASSWORD not in r.out + r.err
    assert world.keeper.agent_stake(addr(SPARE)).free == before


def test_keystore__readable_by_others__refused(cli: Cli, keystore, monkeypatch):
    keystore.chmod(0o644)
    monkeypatch.setenv("PB_PW", KEYSTORE_PASSWORD)
    r = cli("stake", "deposit", "1", "--keystore", "ks.json", "--password-env", "PB_PW", "--yes")
    assert (r.code, error_line(r)) == (
        1, "pactbond: keystore ks.json is readable by others (mode 644); run: chmod 600 ks.json")


@pytest.mark.parametrize("wallet, message", [
    (["--keystore", "nope.json"], "keystore nope.json does not exist"),
    (["--keystore", "ks.json", "--password-env", "PB_UNSET"],
     "environment variable PB_UNSET is not set"),
    (["--key-env", "PB_UNSET"], "environment variable PB_UNSET is not set (it should hold a key)"),
    (["--key-env", "PB_GARBAGE"], "not a valid private key (expected 32 bytes of hex)"),
])
def test_wallet_unusable__exit_1(cli: Cli, keystore, monkeypatch, wallet, message):
    monkeypatch.delenv("PB_UNSET", raising=False)
    monkeypatch.setenv("PB_GARBAGE", "0xnot-a-key-but-secret-looking")
    r = cli("stake", "deposit", "1", "--yes", *wallet)
    assert (r.code, error_line(r)) == (1, f"pactbond: {message}")
    assert "not-a-key-but-secret" not in r.out + r.err


def test_ape_account__unknown_alias__exit_1(cli: Cli):
    pytest.importorskip("ape")
    r = cli("stake", "deposit", "1", "--account", "pactbond-no-such-alias", "--yes")
    assert (r.code, error_line(r)) == (
        1, "pactbond: no ape account named 'pactbond-no-such-alias' (see `ape accounts list`)")


def _devnet_state(cwd: Path, **over: Any) -> None:
    (cwd / ".pactbond").mkdir(exist_ok=True)
    (cwd / ".pactbond" / "devnet.json").write_text(json.dumps(over))


def test_dev_account__devnet_state__sends_without_rpc_url(cli: Cli, world, devnet, tmp_path,
                                                          manifest_path):
    _devnet_state(tmp_path, pid=0, url=devnet.url, chain_id=devnet.chain_id,
                  manifest=str(manifest_path))
    before = world.keeper.agent_stake(addr(DEV)).free
    r = cli("stake", "deposit", "0.125", "--dev-account", DEV, "--yes", conn=False)
    assert (r.code, r.out) == (0, "staked 0.125 ETH (agent)\n")
    assert world.keeper.agent_stake(addr(DEV)).free == before + E18 // 8


@pytest.mark.parametrize("state", ["none", "other chain"])
def test_dev_account__not_the_devnet__refused(cli: Cli, world, devnet, tmp_path, manifest_path,
                                             state):
    if state == "other chain":
        _devnet_state(tmp_path, pid=0, url=devnet.url, chain_id=devnet.chain_id + 1,
                      manifest=str(manifest_path))
    before = world.keeper.agent_stake(addr(DEV)).free
    r = cli("stake", "deposit", "1", "--dev-account", DEV, "--yes")
    assert (r.code, error_line(r)) == (
        1, "pactbond: --dev-account is for the local devnet only (its keys are public)")
    assert world.keeper.agent_stake(addr(DEV)).free == before


def test_dev_account__beyond_the_devnets_ten__usage_exit_2(cli: Cli):
    r = cli("stake", "deposit", "1", "--dev-account", 10, "--yes")
    assert (r.code, bad_parameter(error_line(r), "'--dev-account'")) == (
        2, "10 is not in the range 0<=x<=9. (see `pactbond stake deposit --help`)")


# -- amounts and addresses ---------------------------------------------------------------------


@pytest.mark.parametrize("amount, message", [
    ("1.0000000000000000001", "amount '1.0000000000000000001' has more than 18 decimals: the "
                              "asset's smallest unit is 10^-18"),
    ("abc", "amount 'abc' is not a number (e.g. 1.5 or 100wei)"),
    ("1,5", "amount '1,5' is not a number (e.g. 1.5 or 100wei)"),
    ("nan", "amount 'nan' is not a number (e.g. 1.5 or 100wei)"),
    ("1e1000000", "amount '1e1000000' is above 2**256 - 1 of the smallest unit"),
    ("\u00b2wei", "amount '\u00b2wei': a wei amount is a whole number"),
    ("1" * 401, f"amount {'1' * 20!r}... is too long for an amount"),
    ("1.5wei", "amount '1.5wei': a wei amount is a whole number"),
    ("0", "amount must be above 0"),
])
def test_stake_deposit__bad_amount__exit_1_nothing_sent(cli: Cli, world, amount, message):
    before = world.keeper.agent_stake(addr(AGENT)).free
    r = cli("stake", "deposit", amount, "--yes", *key(AGENT))
    assert (r.code, error_line(r)) == (1, f"pactbond: {message}")
    assert world.keeper.agent_stake(addr(AGENT)).free == before


def test_stake_deposit__negative_amount__refused(cli: Cli, world):
    before = world.keeper.agent_stake(addr(AGENT)).free
    r = cli("stake", "deposit", "--yes", *key(AGENT), *cli.conn, "--", "-1", conn=False)
    assert (r.code, error_line(r)) == (1, "pactbond: amount '-1' must be a non-negative number")
    # without `--`, "-1" reads as an option: a usage error
    r = cli("stake", "deposit", "-1", "--yes", *key(AGENT))
    assert (r.code, error_line(r)) == (2, "pactbond: No such option: -1 "
                                          "(see `pactbond stake deposit --help`)")
    assert world.keeper.agent_stake(addr(AGENT)).free == before


@pytest.mark.parametrize("text, decimals, wei", [
    ("12345678901.123456789012345678", 18, 12345678901123456789012345678),
    ("99999999999999999999999999999999", 18, 99999999999999999999999999999999 * 10**18),
    ("1.5e-1", 18, 15 * 10**16),
    ("2e3", 6, 2 * 10**9),
    (".5", 0 + 1, 5),
    (f"{2**256 - 1}wei", 18, 2**256 - 1),
    ("+1", 18, 10**18),
    ("1e-230", 255, 10**25),
    ("10e-19", 18, 1),
])
def test_parse_amount__exact_integer_arithmetic(text, decimals, wei):
    """No decimal context: 28 significant digits used to round large amounts silently."""
    assert parse_amount(text, decimals) == wei
    assert parse_amount(fmt_amount(wei, decimals, "X").split()[0], decimals) == wei


def test_fmt_amount__exact_at_any_size():
    assert fmt_amount(2**256 - 1) == ("115792089237316195423570985008687907853269984665640564039457"
                                      ".584007913129639935 ETH")
    assert (fmt_amount(0), fmt_amount(1), fmt_amount(5, 0, "T"), fmt_amount(-1)) == (
        "0 ETH", "0.000000000000000001 ETH", "5 T", "-0.000000000000000001 ETH")


def test_amount_in_wei__exact(cli: Cli, world):
    before = world.keeper.agent_stake(addr(AGENT)).free
    r = cli("stake", "deposit", "1_000wei", "--yes", *key(AGENT))
    assert (r.code, r.out) == (0, "staked 0.000000000000001 ETH (agent)\n")
    assert world.keeper.agent_stake(addr(AGENT)).free == before + 1000


@pytest.mark.parametrize("argv, message", [
    (["stake", "show", "0x123"],
     "address: not an address: '0x123' (expected 0x followed by 40 hex digits)"),
    (["stake", "show", "0x" + "g" * 40],
     f"address: not an address: '0x{'g' * 40}' (expected 0x followed by 40 hex digits)"),
    # one letter's case flipped: the checksum catches the typo
    (["stake", "show", TYPO], f"address: bad checksum in address {TYPO} "
                             "(expected 0x followed by 40 hex digits)"),
    (["job", "open", "1", "--agent", "0xabc", "--value", "1", "--yes", *key(BUYER)],
     "agent: not an address: '0xabc' (expected 0x followed by 40 hex digits)"),
    (["committee", "create", "--members", f"{addr(SPARE)},0x12", "--threshold", "1", "--bond",
      "1", "--penalty", "1", *key(ADMIN)],
     "member: not an address: '0x12' (expected 0x followed by 40 hex digits)"),
    (["withdraw", "--to", "0x12", *key(BUYER)],
     "--to: not an address: '0x12' (expected 0x followed by 40 hex digits)"),
    (["stake", "deposit", "1", "--asset", "usdc", "--yes", *key(AGENT)],
     "asset: not an address: 'usdc' (expected 0x followed by 40 hex digits)"),
])
def test_bad_address__exit_1(cli: Cli, world, argv, message):
    jobs = world.keeper.job_count()
    r = cli(*argv)
    assert (r.code, error_line(r)) == (1, f"pactbond: {message}")
    assert world.keeper.job_count() == jobs


# -- stake -------------------------------------------------------------------------------------


def test_stake_deposit_show_withdraw__agent(cli: Cli, world):
    pb = world.keeper
    before = pb.agent_stake(addr(SPARE)).free
    r = cli("stake", "deposit", "1.5", "--yes", *key(SPARE))
    assert (r.code, r.out) == (0, "staked 1.5 ETH (agent)\n")
    assert pb.agent_stake(addr(SPARE)).free == before + 3 * E18 // 2
    r = cli("stake", "show", addr(SPARE), "--json")
    assert r.code == 0
    assert r.json["address"] == addr(SPARE)
    assert r.json["agent"] == {"free": before + 3 * E18 // 2, "locked": 0}
    assert set(r.json["evaluator"]) == {"stake", "reserved", "pending", "unlock_at"}
    r = cli("stake", "show", *key(SPARE))  # default: the wallet's own
    assert r.code == 0 and f"address    {addr(SPARE)}" in r.out.splitlines()
    r = cli("stake", "withdraw", "0.5", "--yes", *key(SPARE))
    assert (r.code, r.out) == (0, "withdrew 0.5 ETH\n")
    assert pb.agent_stake(addr(SPARE)).free == before + E18


def test_stake_deposit__erc20__approves_then_stakes_in_its_decimals(cli: Cli, world,
                                                                    mock_erc20_artifact):
    w3, deployer = world.owner.w3, world.devnet.account(OWNER)
    token = deploy_token(w3, deployer, mock_erc20_artifact, decimals=6)
    send(w3, deployer, token.functions.mint(addr(SPARE), 5 * 10**6))
    pb = world.keeper
    r = cli("stake", "deposit", "1.0000001", "--asset", token.address, "--yes", *key(SPARE))
    assert (r.code, error_line(r)) == (
        1, "pactbond: amount '1.0000001' has more than 6 decimals: the asset's smallest unit "
           "is 10^-6")
    r = cli("stake", "deposit", "2.5", "--asset", token.address, "--yes", *key(SPARE))
    assert (r.code, r.out) == (0, "staked 2.5 units (agent)\n")
    assert pb.agent_stake(addr(SPARE), token.address).free == 2_500_000
    assert pb.balance(addr(SPARE), token.address) == 2_500_000
    r = cli("stake", "show", addr(SPARE), "--asset", token.address, "--json")
    assert (r.json["asset"], r.json["agent"]["free"]) == (token.address, 2_500_000)


def test_stake_deposit__erc20_refused__no_approve_sent(cli: Cli, world, mock_erc20_artifact):
    """A deposit the client refuses sends nothing: the allowance is raised only after every
    check has passed (it used to be approved first, leaving gas spent and an allowance)."""
    w3, deployer = world.owner.w3, world.devnet.account(OWNER)
    token = deploy_token(w3, deployer, mock_erc20_artifact, decimals=6)
    send(w3, deployer, token.functions.mint(addr(SPARE), 10**6))
    nonce = w3.eth.get_transaction_count(addr(SPARE))
    r = cli("stake", "deposit", "2", "--asset", token.address, "--yes", *key(SPARE))
    assert r.code == 1 and "token balance 1000000 < 2000000" in error_line(r)
    assert world.keeper.allowance(addr(SPARE), token.address) == 0
    assert w3.eth.get_transaction_count(addr(SPARE)) == nonce


def test_stake_withdraw__more_than_free__contract_reason(cli: Cli, world):
    free = world.keeper.agent_stake(addr(SPARE)).free
    r = cli("stake", "withdraw", "1000000", "--yes", *key(SPARE))
    assert (r.code, error_line(r)) == (
        1, f"pactbond: stake: exceeds free stake — free stake is {free}, asked {10**6 * E18}")


def test_stake_evaluator__deposit_unstake_cooldown_withdraw(cli: Cli, world):
    pb = world.keeper
    s0 = pb.evaluator_stake(addr(SPARE))
    r = cli("stake", "deposit", "2", "--evaluator", "--yes", *key(SPARE))
    assert (r.code, r.out) == (0, "staked 2 ETH (evaluator)\n")
    assert pb.evaluator_stake(addr(SPARE)).stake == s0.stake + 2 * E18
    r = cli("stake", "unstake", "1", "--yes", *key(SPARE))
    s1 = pb.evaluator_stake(addr(SPARE))
    assert s1.pending == s0.pending + E18 and s1.unlock_at > pb.now()
    assert (r.code, r.out) == (0, f"unstake requested: withdrawable after {s1.unlock_at} "
                                  "(chain time)\n")
    # the cooldown is a deadline: too early is the contract's reason
    r = cli("stake", "withdraw", "--evaluator", "--yes", *key(SPARE))
    assert (r.code, error_line(r)) == (
        1, f"pactbond: stake: cooldown not over — the stake unlocks at {s1.unlock_at}")
    world.warp(s1.unlock_at - pb.now() + 1)
    r = cli("stake", "withdraw", "--evaluator", "--yes", *key(SPARE))
    assert (r.code, r.out) == (0, f"withdrew {fmt_amount(s1.pending)}\n")
    s2 = pb.evaluator_stake(addr(SPARE))
    assert (s2.stake, s2.pending) == (s1.stake - s1.pending, 0)


def test_stake_withdraw__amount_and_evaluator__usage_exit_2(cli: Cli):
    r = cli("stake", "withdraw", "1", "--evaluator", *key(SPARE))
    assert (r.code, error_line(r)) == (
        2, "pactbond: give AMOUNT for agent stake, or --evaluator without AMOUNT "
           "(see `pactbond stake withdraw --help`)")


# -- confirmation ------------------------------------------------------------------------------


def test_confirm__answer_n__nothing_sent_then_y_proceeds(cli: Cli, world):
    pb = world.keeper
    before = pb.agent_stake(addr(AGENT)).free
    r = cli("stake", "deposit", "1", *key(AGENT), stdin="n\n")
    assert r.code == 1
    assert r.err.startswith(f"stake 1 ETH as agent from {addr(AGENT)}. Proceed? [y/N]:")
    assert r.line == "pactbond: cancelled: nothing was sent"
    assert pb.agent_stake(addr(AGENT)).free == before
    r = cli("stake", "deposit", "1", *key(AGENT), stdin="y\n")
    assert (r.code, r.out.strip()) == (0, "staked 1 ETH (agent)")
    assert pb.agent_stake(addr(AGENT)).free == before + E18


def test_confirm__no_answer__aborted(cli: Cli, world):
    before = world.keeper.agent_stake(addr(AGENT)).free
    r = cli("stake", "deposit", "1", *key(AGENT), stdin="")
    assert (r.code, r.line) == (1, "pactbond: aborted")
    assert world.keeper.agent_stake(addr(AGENT)).free == before


# -- pacts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_pact_create__file__pact_with_spec_hash(cli: Cli, world, tmp_path, fmt):
    data = spec_bytes()
    (tmp_path / "spec.json").write_bytes(data)
    shadow = {"shadow": True, "bond_bps": 0, "slash_bps": 0}
    path = write_doc(tmp_path / f"pact.{fmt}", pact_doc(world, **shadow))
    r = cli("pact", "create", path.name, "--yes", "--json", *key(OWNER))
    assert r.code == 0
    pid = r.json["pact_id"]
    assert r.json["spec_hash"] == "0x" + keccak(data).hex()
    assert world.keeper.pact(pid) == world.terms(**shadow, spec_hash=keccak(data))
    # the spec is kept by its hash, where `job open` finds it
    assert (tmp_path / ".pactbond" / "documents" / f"0x{keccak(data).hex()}").read_bytes() == data


def test_pact_create__human__spec_relative_to_pact_file(cli: Cli, world, tmp_path):
    (tmp_path / "pacts").mkdir()
    (tmp_path / "pacts" / "spec.json").write_bytes(spec_bytes())
    write_doc(tmp_path / "pacts" / "p.yaml", pact_doc(world))
    r = cli("pact", "create", "pacts/p.yaml", "--yes", *key(OWNER))
    pid = pact_count(world)
    assert (r.code, r.out) == (0, f"pact {pid} created (spec 0x{keccak(spec_bytes()).hex()})\n")
    assert world.keeper.pact(pid).spec_hash == keccak(spec_bytes())


@pytest.mark.parametrize("update, drop, message", [
    ({"fail_below_bps": 20_000, "insurance": "0x12", "bogus": 1}, "cap_max",
     "fail_below_bps: Input should be less than or equal to 10000; insurance: Value error, not "
     "an address: '0x12'; cap_max: Field required; bogus: Extra inputs are not permitted"),
    # 1.2345678901234567e18 would have become 1234567890123456768 wei of immutable terms
    ({"evaluator_fee": 1.2345678901234567e18, "bond_bps": True}, None,
     "bond_bps: Input should be a valid integer; evaluator_fee: Input should be a valid "
     "integer"),
])
def test_pact_create__every_wrong_field_named(cli: Cli, world, tmp_path, update, drop, message):
    (tmp_path / "spec.json").write_bytes(spec_bytes())
    doc = pact_doc(world)
    doc.update(update)
    if drop:
        del doc[drop]
    write_doc(tmp_path / "bad.yaml", doc)
    n = pact_count(world)
    r = cli("pact", "create", "bad.yaml", "--yes", *key(OWNER))
    assert (r.code, error_line(r)) == (1, f"pactbond: bad.yaml: {message}")
    assert pact_count(world) == n


@pytest.mark.parametrize("name, content, message", [
    ("missing.yaml", None, "cannot read missing.yaml: No such file or directory"),
    ("list.yaml", b"- a\n- b\n", "list.yaml must hold a mapping of fields"),
    ("broken.json", b"{", "broken.json is not valid YAML/JSON: Expecting property name "
                          "enclosed in double quotes: line 1 column 2 (char 1)"),
    ("broken.yaml", b"a: [1\n", "broken.yaml is not valid YAML/JSON: while parsing a flow "
                                "sequence"),
    ("binary.yaml", b"\x93\xff\x00\x81", "binary.yaml is not a text file: expected YAML or JSON"),
])
def test_pact_create__unreadable_file__exit_1(cli: Cli, world, tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    r = cli("pact", "create", name, "--yes", *key(OWNER))
    assert (r.code, error_line(r)) == (1, f"pactbond: {message}")


def test_pact_create__directory__usage_exit_2(cli: Cli, tmp_path):
    (tmp_path / "d").mkdir()
    r = cli("pact", "create", "d", "--yes", *key(OWNER))
    assert (r.code, bad_parameter(error_line(r), "'FILE'")) == (
        2, "File 'd' is a directory. (see `pactbond pact create --help`)")


def test_pact_create__spec_file_missing__exit_1(cli: Cli, world, tmp_path):
    write_doc(tmp_path / "pact.yaml", pact_doc(world, spec="nope.json"))
    n = pact_count(world)
    r = cli("pact", "create", "pact.yaml", "--yes", *key(OWNER))
    assert (r.code, error_line(r)) == (
        1, "pactbond: spec document nope.json: No such file or directory (`spec:` names the "
           "evaluation spec file, relative to the pact file)")
    assert pact_count(world) == n


def test_pact_create__spec_thresholds_differ__refused(cli: Cli, world, tmp_path):
    data = spec_bytes(5000, 9000)
    (tmp_path / "spec.json").write_bytes(data)
    write_doc(tmp_path / "pact.yaml", pact_doc(world))
    n = pact_count(world)
    r = cli("pact", "create", "pact.yaml", "--yes", *key(OWNER))
    assert (r.code, error_line(r)) == (
        1, "pactbond: spec thresholds 5000/9000 differ from the pact's 5000/8000: the pact's "
           "terms are authoritative")
    assert pact_count(world) == n


def test_pact_show__human_and_json(cli: Cli, world):
    pid = world.pact(evaluator_fee=E18 // 50)
    r = cli("pact", "show", pid, "--json")
    assert r.code == 0
    assert r.json["pact_id"] == pid
    assert r.json["terms"]["spec_hash"] == "0x" + keccak(b"spec").hex()
    assert r.json["terms"]["evaluator_fee"] == E18 // 50
    assert r.json["record"]["settled"] == 0
    r = cli("pact", "show", pid)
    lines = r.out.splitlines()
    assert r.code == 0 and lines[0] == f"pact {pid}"
    assert f"  evaluator_fee          {E18 // 50}" in lines


def test_pact_show__unknown__exit_1(cli: Cli):
    r = cli("pact", "show", "9999")
    assert (r.code, error_line(r)) == (
        1, "pactbond: escrow: unknown pact — no pact 9999 on this deployment")


# -- committees --------------------------------------------------------------------------------


def test_committee__create_accept_rotate_revoke_show(cli: Cli, world):
    pb = world.keeper
    members = f"{addr(SPARE)}, {addr(GUARDIAN)}"
    r = cli("committee", "create", "--members", members, "--threshold", "1", "--bond", "1",
            "--penalty", "0.5", "--rotation-delay", HOUR, "--json", *key(ADMIN))
    assert r.code == 0
    cid = r.json["committee_id"]
    c = pb.committee(cid)
    roster = pb.roster(c.current_version)
    assert (c.admin, c.rotation_delay) == (addr(ADMIN), HOUR)
    assert (roster.members, roster.threshold, roster.bond, roster.penalty, roster.accepted) \
        == ([addr(SPARE), addr(GUARDIAN)], 1, E18, E18 // 2, [])

    r = cli("committee", "accept", c.current_version, *key(SPARE))
    assert (r.code, r.out) == (0, f"{addr(SPARE)} accepted version {c.current_version}\n")
    assert pb.roster(c.current_version).accepted == [addr(SPARE)]
    r = cli("committee", "accept", c.current_version, *key(SPARE))
    assert (r.code, error_line(r)) == (
        1, "pactbond: committee: already accepted — nothing to do: the version is already "
           "accepted")
    r = cli("committee", "accept", c.current_version, *key(BUYER))
    assert (r.code, error_line(r)) == (
        1, f"pactbond: committee: not listed — {addr(BUYER)} is not listed in version "
           f"{c.current_version}")

    r = cli("committee", "rotate", cid, "--members", f"{addr(SPARE)},{addr(KEEPER)}",
            "--threshold", "2", "--bond", "2", "--penalty", "1", "--json", *key(ADMIN))
    assert r.code == 0
    vid = r.json["version_id"]
    c2 = pb.committee(cid)
    assert (c2.pending_version, c2.current_version) == (vid, c.current_version)
    assert pb.roster(vid).members == [addr(SPARE), addr(KEEPER)]
    r = cli("committee", "rotate", cid, "--members", addr(SPARE), "--threshold", "1", "--bond",
            "1", "--penalty", "1", *key(BUYER))
    assert (r.code, error_line(r).startswith("pactbond: committee: not admin")) == (1, True)

    r = cli("committee", "show", cid, "--json")
    assert r.code == 0
    assert r.json["committee"]["pending_version"] == vid
    assert r.json["roster"]["accepted"] == [addr(SPARE)]

    # revoking is irreversible: asked first
    r = cli("committee", "revoke", *key(SPARE), stdin="n\n")
    assert (r.code, r.line) == (1, "pactbond: cancelled: nothing was sent")
    assert addr(SPARE) in pb.roster(c.current_version).active
    r = cli("committee", "revoke", *key(SPARE), stdin="y\n")
    assert (r.code, r.out.strip()) == (0, f"{addr(SPARE)} revoked")
    assert addr(SPARE) not in pb.roster(c.current_version).active
    r = cli("committee", "show", cid)
    assert r.code == 0
    assert r.out.splitlines() == [
        f"committee {cid}: admin {addr(ADMIN)}, version {c.current_version}, 1-of-2, bond 1 ETH, "
        "penalty 0.5 ETH",
        f"  {addr(SPARE)}  accepted, revoked",
        f"  {addr(GUARDIAN)}  not accepted",
    ]


def test_committee_create__bad_amount_and_threshold(cli: Cli):
    base = ["committee", "create", "--members", addr(SPARE), *key(ADMIN)]
    r = cli(*base, "--threshold", "1", "--bond", "0.0000000000000000001", "--penalty", "1")
    assert (r.code, error_line(r)) == (
        1, "pactbond: bond '0.0000000000000000001' has more than 18 decimals: the asset's "
           "smallest unit is 10^-18")
    r = cli(*base, "--threshold", "0", "--bond", "1", "--penalty", "1")
    assert (r.code, bad_parameter(error_line(r), "'--threshold'")) == (
        2, "0 is not in the range x>=1. (see `pactbond committee create --help`)")


def test_committee_show__unknown__exit_1(cli: Cli):
    r = cli("committee", "show", "9999")
    assert (r.code, error_line(r)) == (1, "pactbond: committee: unknown — no committee 9999")


def test_committee_approve_pact__then_job_opens(cli: Cli, world, tmp_path):
    """A pact made by the CLI needs both committees' approval before a job opens on it."""
    (tmp_path / "spec.json").write_bytes(spec_bytes())
    write_doc(tmp_path / "pact.yaml", pact_doc(world))
    pid = cli("pact", "create", "pact.yaml", "--yes", "--json", *key(OWNER)).json["pact_id"]
    open_ = ["job", "open", pid, "--agent", addr(AGENT), "--value", "0.5", "--yes", *key(BUYER)]
    r = cli(*open_)
    assert (r.code, error_line(r).startswith("pactbond: escrow: pact not approved")) == (1, True)
    for cid in (world.cid, world.aid):
        r = cli("committee", "approve-pact", cid, pid, *key(ADMIN))
        assert (r.code, r.out) == (0, f"committee {cid} approved pact {pid}\n")
    r = cli(*open_, "--json")
    assert r.code == 0
    j = world.keeper.job(r.json["job_id"])
    assert (j.pact_id, j.state, j.value) == (pid, JobState.OPEN, E18 // 2)


# -- jobs --------------------------------------------------------------------------------------


def test_job_open__confirmed__funded(cli: Cli, world, tmp_path):
    pid = spec_pact(world, tmp_path)
    pb = world.keeper
    n = pb.job_count()
    r = cli("job", "open", pid, "--agent", addr(AGENT), "--value", "0.75", *key(BUYER),
            stdin="y\n")
    assert r.code == 0 and r.out.strip() == f"job {n + 1} opened"
    assert f"pay 0.76 ETH (value 0.75 ETH + fee 0.01 ETH) into escrow for agent {addr(AGENT)}" \
        in r.err
    j = pb.job(n + 1)
    assert (j.buyer, j.agent, j.pact_id, j.state, j.value, j.fee) \
        == (addr(BUYER), addr(AGENT), pid, JobState.OPEN, 3 * E18 // 4, E18 // 100)


def test_job_open__answer_n__nothing_sent(cli: Cli, world, tmp_path):
    pid = spec_pact(world, tmp_path)
    n = world.keeper.job_count()
    r = cli("job", "open", pid, "--agent", addr(AGENT), "--value", "0.75", *key(BUYER),
            stdin="n\n")
    assert (r.code, r.line) == (1, "pactbond: cancelled: nothing was sent")
    assert world.keeper.job_count() == n


def test_job_open__spec_dir(cli: Cli, world, tmp_path):
    data = spec_bytes()
    pid = world.pact(spec_hash=keccak(data))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "qa.json").write_bytes(data)
    r = cli("job", "open", pid, "--agent", addr(AGENT), "--value", "0.5", "--spec-dir",
            "elsewhere", "--yes", "--json", *key(BUYER))
    assert r.code == 0
    assert world.keeper.job(r.json["job_id"]).pact_id == pid


def test_job_open__spec_does_not_load__refused(cli: Cli, world):
    pid = world.pact()  # spec_hash = keccak(b"spec"): no such document anywhere
    n = world.keeper.job_count()
    r = cli("job", "open", pid, "--agent", addr(AGENT), "--value", "0.5", "--yes", *key(BUYER))
    assert (r.code, error_line(r)) == (
        1, f"pactbond: pact {pid}'s spec does not load, so no job is opened: no document with "
           f"hash 0x{keccak(b'spec').hex()} in .pactbond/documents, specs (pass --spec-dir DIR "
           "holding the spec document the pact names)")
    assert world.keeper.job_count() == n


def test_job_open__spec_thresholds_differ__refused(cli: Cli, world, tmp_path):
    pid = spec_pact(world, tmp_path, data=spec_bytes(5000, 9000))
    n = world.keeper.job_count()
    r = cli("job", "open", pid, "--agent", addr(AGENT), "--value", "0.5", "--yes", *key(BUYER))
    assert (r.code, error_line(r)) == (
        1, f"pactbond: pact {pid}'s spec does not load, so no job is opened: spec thresholds "
           "5000/9000 differ from the pact's 5000/8000: the pact's terms are authoritative "
           "(this pact cannot take jobs)")
    assert world.keeper.job_count() == n


def test_job_open__value_too_precise__exit_1(cli: Cli, world, tmp_path):
    pid = spec_pact(world, tmp_path)
    n = world.keeper.job_count()
    r = cli("job", "open", pid, "--agent", addr(AGENT), "--value", "0.1234567890123456789",
            "--yes", *key(BUYER))
    assert (r.code, error_line(r)) == (
        1, "pactbond: value '0.1234567890123456789' has more than 18 decimals: the asset's "
           "smallest unit is 10^-18")
    assert world.keeper.job_count() == n


def test_job_accept_submit_show(cli: Cli, world, tmp_path):
    pid = world.pact()
    jid = world.job(pid, E18 // 2, upto="open")
    r = cli("job", "accept", jid, *key(AGENT))
    assert (r.code, r.out) == (0, f"job {jid} accepted\n")
    assert state(world, jid) == JobState.ACCEPTED
    r = cli("job", "accept", jid, *key(AGENT))
    assert (r.code, error_line(r).startswith("pactbond: escrow: not open")) == (1, True)

    (tmp_path / "deliverable.txt").write_bytes(b"the agent's work")
    r = cli("job", "submit", jid, "--file", "deliverable.txt", "--uri", "https://example.org/d",
            *key(AGENT))
    h = "0x" + keccak(b"the agent's work").hex()
    assert (r.code, r.out) == (0, f"job {jid} submitted: deliverable {h}\n")
    j = world.keeper.job(jid)
    assert (j.state, j.deliverable_hash) == (JobState.SUBMITTED, keccak(b"the agent's work"))

    r = cli("job", "show", jid, "--json")
    assert r.code == 0
    assert (r.json["id"], r.json["state"], r.json["deliverable_hash"], r.json["value"],
            r.json["agent"]) == (jid, "SUBMITTED", h, E18 // 2, addr(AGENT))
    r = cli("job", "show", jid)
    assert r.code == 0 and "state                SUBMITTED" in r.out.splitlines()


def test_job_submit__by_hash(cli: Cli, world):
    jid = world.job(world.pact(), E18 // 2, upto="accept")
    h = "0x" + "ab" * 32
    r = cli("job", "submit", jid, "--hash", h, *key(AGENT))
    assert (r.code, r.out) == (0, f"job {jid} submitted: deliverable {h}\n")
    assert world.keeper.job(jid).deliverable_hash == bytes.fromhex("ab" * 32)


@pytest.mark.parametrize("argv, code, message", [
    ([], 2, "give exactly one of --file or --hash (see `pactbond job submit --help`)"),
    (["--file", "nope.txt"], 2, "File 'nope.txt' does not exist. "
                                "(see `pactbond job submit --help`)"),
    (["--hash", "0x12"], 1, "--hash '0x12' is not 0x followed by 64 hex digits"),
    (["--hash", EVIDENCE, "--upload", "http://127.0.0.1:9"], 2,
     "--upload needs --file (see `pactbond job submit --help`)"),
])
def test_job_submit__bad_input(cli: Cli, world, argv, code, message):
    jid = world.job(world.pact(), E18 // 2, upto="accept")
    r = cli("job", "submit", jid, *argv, *key(AGENT))
    assert (r.code, bad_parameter(error_line(r), "'--file'")) == (code, message)
    assert state(world, jid) == JobState.ACCEPTED


def test_job_cancel__buyer__refund_credited(cli: Cli, world):
    pb = world.keeper
    jid = world.job(world.pact(), E18 // 2, upto="open")
    credit = pb.credit(addr(BUYER))
    r = cli("job", "cancel", jid, *key(BUYER), stdin="n\n")
    assert (r.code, r.line) == (1, "pactbond: cancelled: nothing was sent")
    assert state(world, jid) == JobState.OPEN
    r = cli("job", "cancel", jid, *key(BUYER), stdin="y\n")
    assert (r.code, r.out.strip()) == (
        0, f"job {jid} cancelled: value and fee credited to the buyer")
    assert state(world, jid) == JobState.CANCELLED
    assert pb.credit(addr(BUYER)) == credit + E18 // 2 + E18 // 100


def test_job_cancel__stranger_in_accept_window__contract_reason(cli: Cli, world):
    jid = world.job(world.pact(), E18 // 2, upto="open")
    deadline = world.keeper.job(jid).deadline
    r = cli("job", "cancel", jid, "--yes", *key(KEEPER))
    assert (r.code, error_line(r)) == (
        1, f"pactbond: escrow: accept window open — only the buyer may cancel before {deadline}")
    assert state(world, jid) == JobState.OPEN


def test_job_list__filters_and_json(cli: Cli, world):
    pid = world.pact()
    a = world.job(pid, E18 // 2, upto="open")
    b = world.job(pid, E18 // 2, upto="submit")
    r = cli("job", "list", "--pact", pid, "--json")
    assert r.code == 0
    assert [(x["job_id"], x["state"], x["value"], x["agent"]) for x in r.json] == [
        (a, "OPEN", E18 // 2, addr(AGENT)), (b, "SUBMITTED", E18 // 2, addr(AGENT))]
    r = cli("job", "list", "--pact", pid, "--state", "submitted", "--json")
    assert [x["job_id"] for x in r.json] == [b]
    r = cli("job", "list", "--pact", pid)
    assert r.code == 0 and len(r.out.splitlines()) == 3
    assert r.out.splitlines()[2].split() == [str(b), str(pid), "SUBMITTED", "0.5", "ETH", addr(AGENT)]
    r = cli("job", "list", "--pact", world.pact())
    assert (r.code, r.out) == (0, "no jobs\n")
    r = cli("job", "list", "--state", "lost")
    assert r.code == 2 and bad_parameter(error_line(r), "'--state'").startswith(
        "'lost' is not one of 'open', 'accepted', ")


@pytest.mark.parametrize("argv", [
    ["job", "accept", "999999", *key(AGENT)],
    ["job", "submit", "999999", "--hash", EVIDENCE, *key(AGENT)],
    ["job", "cancel", "999999", "--yes", *key(BUYER)],
    ["vote", "sign", "999999", "5000", "--evidence", EVIDENCE, *key(EVALS[0])],
    ["challenge", "999999", "--yes", *key(BUYER)],
], ids=lambda a: " ".join(a[:2]))
def test_unknown_job__exit_1(cli: Cli, argv):
    r = cli(*argv)
    assert (r.code, error_line(r)) == (1, UNKNOWN_JOB)


def test_job_show__unknown__says_how_many(cli: Cli, world):
    n = world.keeper.job_count()
    r = cli("job", "show", "999999", "--json")
    assert (r.code, error_line(r)) == (
        1, f"pactbond: no job 999999: this deployment has {n} jobs")


def test_job_accept__after_accept_window__contract_reason(cli: Cli, world):
    jid = world.job(world.pact(), E18 // 2, upto="open")
    deadline = world.keeper.job(jid).deadline
    world.warp(HOUR + 1)
    r = cli("job", "accept", jid, *key(AGENT))
    assert (r.code, error_line(r)) == (
        1, f"pactbond: escrow: accept window closed — the accept deadline was {deadline}")
    assert state(world, jid) == JobState.OPEN


def test_job_submit__after_work_deadline__contract_reason(cli: Cli, world):
    jid = world.job(world.pact(), E18 // 2, upto="accept")
    deadline = world.keeper.job(jid).deadline
    world.warp(HOUR + 1)
    r = cli("job", "submit", jid, "--hash", EVIDENCE, *key(AGENT))
    assert (r.code, error_line(r)) == (
        1, f"pactbond: escrow: work deadline passed — the work deadline was {deadline}")
    assert state(world, jid) == JobState.ACCEPTED


# -- votes -------------------------------------------------------------------------------------


def test_vote_sign_verify_submit__job_reaches_verdict(cli: Cli, world, tmp_path):
    pid = world.pact()
    jid = world.job(pid, E18 // 2)
    j = world.keeper.job(jid)
    for i in EVALS[:2]:
        r = cli("vote", "sign", jid, 9000, "--evidence", EVIDENCE, "--out", f"v{i}.json",
                *key(i))
        assert (r.code, r.out) == (0, f"vote written to v{i}.json\n")
    doc = json.loads((tmp_path / f"v{EVALS[0]}.json").read_text())
    assert doc["member"] == addr(EVALS[0])
    assert doc["vote"] == {"job_id": jid, "deliverable_hash": "0x" + j.deliverable_hash.hex(),
                           "spec_hash": "0x" + keccak(b"spec").hex(), "score_bps": 9000,
                           "evidence_hash": EVIDENCE, "round": 0, "deadline": j.deadline}
    r = cli("vote", "verify", f"v{EVALS[0]}.json")
    assert (r.code, r.out) == (0, f"valid: {addr(EVALS[0])} scores job {jid} 9000 bps\n")
    assert state(world, jid) == JobState.SUBMITTED
    r = cli("vote", "submit", f"v{EVALS[0]}.json", f"v{EVALS[1]}.json", *key(KEEPER))
    assert (r.code, r.out) == (0, f"2 vote(s) posted for job {jid}: now VERDICT\n")
    j = world.keeper.job(jid)
    assert (j.state, sorted(j.round0.values())) == (JobState.VERDICT, [9000, 9000])
    # posted once: the same vote again no longer counts
    r = cli("vote", "verify", f"v{EVALS[0]}.json")
    assert (r.code, error_line(r).startswith("pactbond: vote: ")) == (1, True)


def test_vote_sign__to_stdout(cli: Cli, world):
    jid = world.job(world.pact(), E18 // 2)
    r = cli("vote", "sign", jid, 1234, "--evidence", EVIDENCE, *key(EVALS[2]))
    assert r.code == 0
    assert (r.json["member"], r.json["vote"]["score_bps"], len(r.json["signature"])) \
        == (addr(EVALS[2]), 1234, 2 + 130)


def test_vote_verify__tampered_score__bad_signature(cli: Cli, world, tmp_path):
    jid = world.job(world.pact(), E18 // 2)
    r = cli("vote", "sign", jid, 9000, "--evidence", EVIDENCE, "--out", "v.json",
            *key(EVALS[0]))
    doc = json.loads((tmp_path / "v.json").read_text())
    doc["vote"]["score_bps"] = 100
    write_doc(tmp_path / "t.json", doc)
    r = cli("vote", "verify", "t.json")
    assert (r.code, error_line(r).startswith("pactbond: vote: bad signature")) == (1, True)
    r = cli("vote", "submit", "t.json", *key(KEEPER))
    assert (r.code, error_line(r).startswith("pactbond: vote: bad signature")) == (1, True)
    assert state(world, jid) == JobState.SUBMITTED


def test_vote_files__bad_input(cli: Cli, world, tmp_path):
    r = cli("vote", "verify", "missing.json")
    assert (r.code, error_line(r)) == (
        1, "pactbond: cannot read missing.json: No such file or directory")
    write_doc(tmp_path / "x.json", {"vote": {"job_id": 1}, "member": addr(EVALS[0]),
                                    "signature": "0x00"})
    r = cli("vote", "verify", "x.json")
    assert (r.code, error_line(r).startswith("pactbond: x.json is not a signed vote: ")) \
        == (1, True)
    a, b = world.job(world.pact(), E18 // 2), world.job(world.pact(), E18 // 2)
    for jid in (a, b):
        cli("vote", "sign", jid, 9000, "--evidence", EVIDENCE, "--out", f"{jid}.json",
            *key(EVALS[0]))
    r = cli("vote", "submit", f"{a}.json", f"{b}.json", *key(KEEPER))
    assert (r.code, error_line(r)) == (
        1, "pactbond: all votes must be for the same job and round")
    r = cli("vote", "sign", a, 10_001, "--evidence", EVIDENCE, *key(EVALS[0]))
    assert (r.code, bad_parameter(error_line(r), "'SCORE'")) == (
        2, "10001 is not in the range 0<=x<=10000. (see `pactbond vote sign --help`)")
    r = cli("vote", "sign", a, 5000, "--evidence", "0x12", *key(EVALS[0]))
    assert (r.code, error_line(r)) == (
        1, "pactbond: --evidence '0x12' is not 0x followed by 64 hex digits")
    assert (state(world, a), state(world, b)) == (JobState.SUBMITTED, JobState.SUBMITTED)


def test_vote_sign_batch_verify_submit__one_call_for_many_jobs(cli: Cli, world, tmp_path):
    pid = world.pact()
    jids = [world.job(pid, E18 // 2) for _ in range(3)]
    for i in EVALS[:2]:
        r = cli("vote", "sign-batch", *[f"{j}:{9000 - j % 7}:{EVIDENCE}" for j in jids],
                "--out", f"b{i}.json", *key(i))
        assert (r.code, r.out) == (0, f"batch of 3 votes written to b{i}.json\n")
        r = cli("vote", "verify", f"b{i}.json")
        assert (r.code, r.out) == (0, f"valid: {addr(i)}'s batch of 3 votes (round 0)\n")
    doc = json.loads((tmp_path / f"b{EVALS[0]}.json").read_text())
    assert (doc["member"], doc["batch"]["round"], [v["job_id"] for v in doc["batch"]["votes"]]) \
        == (addr(EVALS[0]), 0, jids)
    before = world.keeper.w3.eth.block_number
    r = cli("vote", "submit", f"b{EVALS[0]}.json", f"b{EVALS[1]}.json", *key(KEEPER))
    assert (r.code, r.out) == (0, "6 vote(s) in 2 batch(es) posted for 3 job(s)\n")
    assert world.keeper.w3.eth.block_number == before + 1  # one settle_batch transaction
    for j in jids:
        got = world.keeper.job(j)
        assert (got.state, sorted(got.round0.values())) == (JobState.VERDICT, [9000 - j % 7] * 2)
    r = cli("vote", "verify", f"b{EVALS[0]}.json")  # posted once: no longer counts
    assert (r.code, error_line(r)) == (
        1, f"pactbond: vote: duplicate vote — {addr(EVALS[0])} already voted on job {jids[0]}")


def test_vote_batch_files__bad_input(cli: Cli, world, tmp_path):
    pid = world.pact()
    a, b = world.job(pid, E18 // 2), world.job(pid, E18 // 2)
    for bad in ("1:2", f"x:9000:{EVIDENCE}", f"{a}:10001:{EVIDENCE}", f"0:1:{EVIDENCE}",
                f"\u00b2:1:{EVIDENCE}", f"{a}:1:{EVIDENCE}:x"):
        r = cli("vote", "sign-batch", bad, *key(EVALS[0]))
        assert (r.code, error_line(r)) == (
            1, f"pactbond: vote {bad!r} is not JOB_ID:SCORE:EVIDENCE_HASH (a job id >= 1, a "
               "score of 0..10000 bps, 0x and 64 hex digits)")
    r = cli("vote", "sign-batch", f"{a}:1:0x12", *key(EVALS[0]))
    assert (r.code, error_line(r)) == (
        1, f"pactbond: evidence of vote '{a}:1:0x12': '0x12' is not 0x followed by 64 hex digits")
    r = cli("vote", "sign-batch", f"{a}:1:{EVIDENCE}", f"{a}:2:{EVIDENCE}", *key(EVALS[0]))
    assert (r.code, error_line(r)) == (
        1, f"pactbond: a batch holds one vote per job: job(s) [{a}] twice")
    other = world.job(world.pact(), E18 // 2)
    r = cli("vote", "sign-batch", f"{a}:1:{EVIDENCE}", f"{other}:2:{EVIDENCE}", *key(EVALS[0]))
    assert (r.code, error_line(r).startswith("pactbond: vote: job of another pact — the jobs "
                                             f"are of pacts [{pid}, ")) == (1, True)
    for jid, name in ((a, "pa.json"), (other, "po.json")):
        cli("vote", "sign-batch", f"{jid}:1:{EVIDENCE}", "--out", name, *key(EVALS[2]))
    r = cli("vote", "submit", "pa.json", "po.json", *key(KEEPER))
    assert (r.code, error_line(r).startswith("pactbond: the batches cover jobs of pacts [")) \
        == (1, True)
    r = cli("vote", "sign-batch", f"{a}:9000:{EVIDENCE}", f"{b}:8000:{EVIDENCE}", "--out",
            "b.json", *key(EVALS[0]))
    assert r.code == 0
    cli("vote", "sign", a, 9000, "--evidence", EVIDENCE, "--out", "v.json", *key(EVALS[1]))
    r = cli("vote", "submit", "b.json", "v.json", *key(KEEPER))
    assert (r.code, error_line(r)) == (
        1, "pactbond: pass signed votes or signed vote batches, not both")
    doc = json.loads((tmp_path / "b.json").read_text())
    doc["batch"]["votes"][1]["score_bps"] = 100  # not what the member signed
    write_doc(tmp_path / "t.json", doc)
    r = cli("vote", "verify", "t.json")
    assert (r.code, error_line(r).startswith("pactbond: vote: bad signature")) == (1, True)
    r = cli("vote", "submit", "t.json", *key(KEEPER))
    assert (r.code, error_line(r).startswith("pactbond: vote: bad signature")) == (1, True)
    doc["batch"]["votes"][1]["round"] = 1  # a batch's votes share its round
    write_doc(tmp_path / "r.json", doc)
    r = cli("vote", "verify", "r.json")
    assert (r.code, error_line(r).startswith("pactbond: r.json is not a signed vote batch: ")) \
        == (1, True)
    assert (state(world, a), state(world, b)) == (JobState.SUBMITTED, JobState.SUBMITTED)


# -- challenge, keeper, withdraw ---------------------------------------------------------------


def test_challenge__appeal_votes__keeper_resolves(cli: Cli, world):
    pb = world.keeper
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR)
    jid = verdict(world, pid)
    r = cli("challenge", jid, *key(BUYER), stdin="n\n")
    assert (r.code, r.line) == (1, "pactbond: cancelled: nothing was sent")
    assert "paying a bond of 0.1 ETH" in r.err
    assert state(world, jid) == JobState.VERDICT
    r = cli("challenge", jid, "--expected-score", 100, "--yes", *key(BUYER))
    assert (r.code, error_line(r)) == (
        1, "pactbond: escrow: score changed — the round-0 score is 9000, not 100")
    r = cli("challenge", jid, "--expected-score", 9000, "--yes", *key(BUYER))
    assert (r.code, r.out) == (0, f"job {jid} challenged: the appeal committee judges it\n")
    j = pb.job(jid)
    assert (j.state, j.challenged_by_agent) == (JobState.CHALLENGED, False)

    for i in APPEAL[:2]:
        r = cli("vote", "sign", jid, 2000, "--round", 1, "--evidence", EVIDENCE, "--out",
                f"a{i}.json", *key(i))
        assert r.code == 0
    r = cli("vote", "submit", f"a{APPEAL[0]}.json", f"a{APPEAL[1]}.json", *key(KEEPER))
    assert (r.code, r.out) == (0, f"2 vote(s) posted for job {jid}: now CHALLENGED\n")
    assert sorted(pb.job(jid).round1.values()) == [2000, 2000]

    r = cli("keeper", "run", "--once", *key(KEEPER))  # the appeal window is still open
    assert r.code == 0 and f"job {jid}:" not in r.out
    world.warp(HOUR + 1)
    r = cli("keeper", "run", "--once", *key(KEEPER))
    assert r.code == 0 and f"job {jid}: resolve" in r.out.splitlines()
    assert state(world, jid) == JobState.SETTLED
    settled = [e for e in pb.events(names="JobSettled", job_id=jid)]
    assert [e.score_bps for e in settled] == [2000]  # overturned: the appeal's score settles it


def test_challenge__after_challenge_window__contract_reason(cli: Cli, world):
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR)
    jid = verdict(world, pid)
    j = world.keeper.job(jid)
    world.warp(HOUR + 1)
    r = cli("challenge", jid, "--yes", *key(AGENT))
    assert (r.code, error_line(r)) == (
        1, "pactbond: escrow: challenge window closed — the challenge deadline was "
           f"{j.round0_close + HOUR}")
    assert state(world, jid) == JobState.VERDICT


def test_challenge__no_verdict__contract_reason(cli: Cli, world):
    jid = world.job(world.pact(challenge_window=HOUR, appeal_window=HOUR), E18 // 2)
    r = cli("challenge", jid, "--yes", *key(BUYER))
    assert (r.code, error_line(r).startswith("pactbond: escrow: no verdict to challenge")) \
        == (1, True)


def test_keeper_run_once__finalizes_and_expires_due_jobs(cli: Cli, world):
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR)
    finalize = verdict(world, pid)
    no_delivery = world.job(pid, E18 // 2, upto="accept")
    silence = world.job(pid, E18 // 2, upto="submit")
    world.warp(HOUR + 1)
    not_due = world.job(pid, E18 // 2, upto="accept")
    r = cli("keeper", "run", "--once", *key(KEEPER))
    assert r.code == 0
    lines = r.out.splitlines()
    assert {f"job {finalize}: finalize", f"job {no_delivery}: expire",
            f"job {silence}: expire"} <= set(lines)
    assert not any(x.startswith(f"job {not_due}:") for x in lines)
    assert [state(world, j) for j in (finalize, no_delivery, silence, not_due)] == [
        JobState.SETTLED, JobState.EXPIRED_NO_DELIVERY, JobState.EXPIRED_NO_VERDICT,
        JobState.ACCEPTED]
    r = cli("keeper", "run", "--once", *key(KEEPER))  # nothing left that is due
    assert (r.code, r.out) == (0, "")


def test_keeper_run_once__a_refused_duty__reported_and_the_pass_goes_on(cli: Cli, world, monkeypatch):
    from pactbond.client import Pactbond
    from pactbond.errors import WrongStateError

    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR)
    first, second = verdict(world, pid), verdict(world, pid)
    world.warp(HOUR + 1)
    real = Pactbond.finalize

    def raced(self: Pactbond, jid: int):  # another keeper got to the first job before us
        if jid == first:
            raise WrongStateError("escrow: no verdict")
        return real(self, jid)

    monkeypatch.setattr(Pactbond, "finalize", raced)
    r = cli("keeper", "run", "--once", *key(KEEPER))
    assert r.code == 1
    assert f"job {first}: finalize not done: escrow: no verdict" in r.err.splitlines()
    assert f"job {second}: finalize" in r.out.splitlines()
    assert [state(world, j) for j in (first, second)] == [JobState.VERDICT, JobState.SETTLED]


def test_keeper_run_loop__node_unreachable__reported_and_retried(cli: Cli, world, monkeypatch):
    import requests

    from pactbond.cli import commands

    passes: list[int] = []

    def flaky(pb, start=1, pending=None):  # the node drops the first pass; the second ends it
        passes.append(start)
        if len(passes) == 1:
            raise requests.ConnectionError("connection refused")
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "keeper_pass", flaky)
    monkeypatch.setattr(commands.time, "sleep", lambda _s: None)
    r = cli("keeper", "run", "--interval", "0.5", *key(KEEPER))
    assert "keeper: node unavailable (connection refused); retrying in 0.5 s" in r.err.splitlines()
    assert passes == [1, 1]


def test_keeper_pass__ended_jobs_skipped_only_once_deep(world):
    # a keeper loop stops re-reading ended jobs, but only those ended FINAL_DEPTH blocks ago: a
    # reorg cannot bring them back
    from pactbond.cli.commands import FINAL_DEPTH, keeper_pass

    jid = world.job(world.pact(), E18 // 2, upto="open")
    world.buyer.cancel(jid)
    assert keeper_pass(world.keeper, jid) == ([], jid)  # ended at the head only
    world.devnet.rpc("anvil_mine", [FINAL_DEPTH + 1])
    assert keeper_pass(world.keeper, jid)[1] == jid + 1
    # a job ended at the head only holds the start, even with a later job ended deep after it
    pid = world.pact()
    late, early = (world.job(pid, E18 // 2, upto="open") for _ in range(2))
    world.buyer.cancel(early)  # the later id ends first...
    world.devnet.rpc("anvil_mine", [FINAL_DEPTH + 1])
    world.buyer.cancel(late)  # ...the earlier id just now
    assert late < early
    assert keeper_pass(world.keeper, late)[1] == late  # it was moved past `late` before


def test_keeper_pass__job_logs_not_rebuilding__reported_the_pass_goes_on(world, monkeypatch):
    from pactbond.cli.commands import keeper_pass
    from pactbond.client import JobLogsError

    pid = world.pact()
    lost, due = (world.job(pid, E18 // 2, upto="accept") for _ in range(2))
    world.warp(HOUR + 1)  # both past their work deadline
    pb = world.keeper.with_wallet(world.keeper.wallet)
    real = pb.job

    def job(jid, block="latest"):
        if jid == lost:
            raise JobLogsError(f"job {jid}: the escrow's logs do not rebuild its stored word")
        return real(jid, block)

    monkeypatch.setattr(pb, "job", job)
    tried, start = keeper_pass(pb, lost)
    assert tried == [(lost, "read", f"job {lost}: the escrow's logs do not rebuild its stored "
                                    "word"), (due, "expire", None)]
    assert start == lost  # not known to be over: the next pass reads it again
    assert world.keeper.job(due).state == JobState.EXPIRED_NO_DELIVERY
    world.keeper.expire(lost)  # leave no due job to other tests' keeper passes


def test_withdraw__credit_to_balance(cli: Cli, world):
    pb = world.keeper
    jid = world.job(world.pact(), E18 // 2, upto="open")
    world.buyer.cancel(jid)
    credit = pb.credit(addr(BUYER))
    assert credit >= E18 // 2 + E18 // 100
    to = to_checksum_address("0x" + keccak(b"cli withdraw recipient")[:20].hex())  # empty
    r = cli("withdraw", "--to", to, *key(BUYER), stdin="n\n")
    assert (r.code, r.line) == (1, "pactbond: cancelled: nothing was sent")
    assert pb.credit(addr(BUYER)) == credit
    r = cli("withdraw", "--to", to, "--yes", *key(BUYER))
    assert (r.code, r.out) == (0, f"withdrew {fmt_amount(credit)}\n")
    assert (pb.credit(addr(BUYER)), pb.balance(to)) == (0, credit)
    r = cli("withdraw", "--yes", *key(BUYER))
    assert (r.code, error_line(r)) == (
        1, f"pactbond: nothing to withdraw: {addr(BUYER)} has no credit in ETH")


def test_withdraw__to_self(cli: Cli, world):
    pb = world.keeper
    jid = world.job(world.pact(), E18 // 2, upto="open")
    world.buyer.cancel(jid)
    credit, balance = pb.credit(addr(BUYER)), pb.balance(addr(BUYER))
    r = cli("withdraw", "--yes", *key(BUYER))
    assert r.code == 0
    gained = pb.balance(addr(BUYER)) - balance
    assert pb.credit(addr(BUYER)) == 0
    assert credit - E18 // 1000 < gained < credit  # less the gas of one transaction


# -- report ------------------------------------------------------------------------------------


def test_report__table_json_plot(cli: Cli, world, tmp_path):
    shadow = world.pact(shadow=True, bond_bps=0, slash_bps=0)
    bounded = world.pact()
    for pid, scores in ((shadow, (9000, 9000, 9000)), (bounded, (3000, 3000, 3000))):
        jid = world.job(pid, E18 // 2)
        world.keeper.settle(jid, world.votes(jid, list(scores)))
        assert state(world, jid) == JobState.SETTLED
    rollout = {"name": "cli-rollout", "owner": "cli-team", "workflow": "triage",
               "proof_model": "reference answers",
               "stages": [{"name": "shadow-1", "pact_id": shadow, "kind": "shadow"},
                          {"name": "bounded-1", "pact_id": bounded, "kind": "bounded"}],
               "expansion": {"min_settled": 1, "min_pass_rate_bps": 9000, "max_overturned": 0}}
    write_doc(tmp_path / "rollout.yaml", rollout)

    r = cli("report", "rollout.yaml", "--json")
    assert r.code == 0
    doc = r.json
    assert doc["rollout"] == "cli-rollout"
    s, b = doc["stages"]
    assert (s["name"], s["pact_id"], s["jobs_settled"], s["passed"], s["expansion"]["met"]) \
        == ("shadow-1", shadow, 1, 1, True)
    assert (b["name"], b["pact_id"], b["jobs_settled"], b["failed"], b["expansion"]["met"]) \
        == ("bounded-1", bounded, 1, 1, False)

    # the bounded job settled in the head block: one confirmation leaves it out
    r = cli("report", "rollout.yaml", "--json", "--confirmations", 1)
    assert r.code == 0
    assert [st["jobs_settled"] for st in r.json["stages"]] == [1, 0]

    r = cli("report", "rollout.yaml", "--plot", "out.png")
    assert r.code == 0
    assert "shadow-1" in r.out and "bounded-1" in r.out
    assert r.out.splitlines()[-1] == "plot: out.png"
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("content, message", [
    (None, "cannot read rollout file missing.yaml: No such file or directory"),
    (b"\x93\xff\x00", "rollout file missing.yaml is not a text file: expected YAML or JSON"),
    (b"name: [", None),
])
def test_report__bad_rollout_file__exit_1(cli: Cli, tmp_path, content, message):
    if content is not None:
        (tmp_path / "missing.yaml").write_bytes(content)
    r = cli("report", "missing.yaml")
    assert r.code == 1
    line = error_line(r)
    if message is not None:
        assert line == f"pactbond: {message}"
    else:
        assert line.startswith("pactbond: rollout file missing.yaml is not valid YAML/JSON: ")


def test_report__wrong_field_named(cli: Cli, world, tmp_path):
    doc = {"name": "x", "owner": "t", "workflow": "w", "proof_model": "p",
           "stages": [{"name": "a", "pact_id": world.pact(), "kind": "canary"}],
           "expansion": {"min_settled": "20", "min_pass_rate_bps": 9000, "max_overturned": 0}}
    write_doc(tmp_path / "r.yaml", doc)
    r = cli("report", "r.yaml")
    line = error_line(r)
    assert r.code == 1 and line.startswith("pactbond: rollout file r.yaml: ")
    assert "stages[0].kind" in line and "expansion.min_settled" in line


# -- oracle, deploy ----------------------------------------------------------------------------


def test_oracle_run__config_missing__exit_2(cli: Cli):
    r = cli("oracle", "run", "--config", "missing.yaml", conn=False)
    assert (r.code, error_line(r)) == (
        2, "pactbond oracle: cannot read config missing.yaml: No such file or directory")


def test_deploy__outside_the_source_tree__exit_1(cli: Cli):
    assert not os.path.exists("scripts/deploy.py")
    r = cli("deploy", "--network", "ethereum:sepolia:node", conn=False)
    assert (r.code, error_line(r)) == (
        1, "pactbond: `pactbond deploy` runs the project's scripts/deploy.py with ape: run it "
           "from the pactbond source tree")


@pytest.mark.parametrize("over, message", [
    ({"log_level": "LOUD"}, "config field log_level: Input should be 'DEBUG', 'INFO', 'WARNING', "
                            "'ERROR' or 'CRITICAL'"),
    ({"peers": {"0x" + "11" * 20: None}}, "config field peers: Value error, a peer's URL is a "
                                          "string, got NoneType"),
    ({"peers": {"0x" + "11" * 20: "ftp://peer"}}, "config field peers: Value error, a peer's URL "
                                                  "is http(s)://host[:port], got 'ftp://peer'"),
    ({"peers": {"0x" + "11" * 20: "http://user:token@10.0.0.5:8702"}},
     "config field peers: Value error, a peer's URL must not carry credentials"),
])
def test_oracle_config__bad_field__refused_before_start(tmp_path, over, message):
    """Refused when the file is read, not at start-up with a traceback (log_level), or at
    every fetch (a null peer URL), or published in evidence (a peer URL's credentials)."""
    from pactbond.errors import InvalidInputError
    from pactbond.oracle.config import OracleSettings

    doc = {"rpc_url": "http://127.0.0.1:1", "manifest": "m.json", "committees": [1], **over}
    (tmp_path / "o.yaml").write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError) as info:
        OracleSettings.load(tmp_path / "o.yaml")
    assert str(info.value) == message
    assert "token" not in str(info.value)

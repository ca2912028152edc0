"""The `pactbond` commands on the client library: one function a command, checks first."""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import click
from eth_abi.exceptions import DecodingError
from pydantic import ValidationError
from web3 import Web3
from web3.exceptions import Web3Exception

from pactbond.cli.common import (
    DEVNET_STATE,
    STATE_DIR,
    CliError,
    address,
    asset_arg,
    confirm,
    connect,
    connection_options,
    devnet_state,
    emit,
    fmt_amount,
    hash32,
    json_option,
    load_document,
    parse_amount,
    to_jsonable,
    wallet_options,
)
from pactbond.client import JobLogsError, JobState, Pactbond
from pactbond.errors import (
    ContractError,
    InvalidInputError,
    NodeError,
    PactbondError,
    TxPendingError,
)
from pactbond.models import ZERO_ADDRESS, PactTerms
from pactbond.oracle.spec import Library, SpecError, content_hash, hex32
from pactbond.votes import SignedVote, SignedVoteBatch

# -- devnet ------------------------------------------------------------------------------------


@click.group()
def devnet() -> None:
    """The embedded local chain (anvil from the project's npm packages)."""


def _exists(pid: int) -> bool:
    """A process with this PID exists (any platform: /proc is Linux only)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ours(state: dict[str, Any]) -> bool:
    """The devnet of `state` is up: its PID exists and the node at its URL reports its chain id
    (a unique random id: after PID reuse, another process is never taken for it)."""
    from pactbond.devnet import chain_id_at

    return _exists(int(state.get("pid", 0))) and \
        chain_id_at(str(state.get("url", ""))) == state.get("chain_id")


@devnet.command("up")
@click.option("--block-time", type=click.FloatRange(min=0.05), help="seconds between blocks "
              "(default: mine each transaction at once)")
@click.option("--port", type=click.IntRange(1, 65535), help="default: a free port")
@json_option
def devnet_up(block_time: float | None, port: int | None, as_json: bool) -> None:
    """Start a local chain, deploy the contracts and write the manifest."""
    from pactbond.deploy import deploy
    from pactbond.devnet import Devnet

    state = devnet_state()
    if state and _ours(state):
        emit(state, as_json, f"devnet already up: {state['url']} (chain {state['chain_id']}, "
                             f"pid {state['pid']})")
        return
    d = Devnet(block_time=block_time, port=port).start()
    try:
        w3 = Web3(Web3.HTTPProvider(d.url))
        m = deploy(w3, d.account(0), network="devnet", out_dir=Path("deployments"),
                   expected_chain_id=d.chain_id)
    except BaseException:
        d.stop()
        raise
    state = {"pid": d.pid, "url": d.url, "chain_id": d.chain_id,
             "manifest": str(Path("deployments/devnet.json").resolve()),
             "contracts": {n: r.address for n, r in m.contracts.items()}}
    try:
        STATE_DIR.mkdir(exist_ok=True)
        DEVNET_STATE.write_text(json.dumps(state, indent=2) + "\n")
    except OSError as e:
        d.stop()  # no record of it: it must not outlive this command
        raise CliError(f"cannot record the devnet in {DEVNET_STATE}: {e.strerror}") from None
    atexit.unregister(d.stop)  # recorded: the chain outlives this command, `devnet down` stops it
    emit(state, as_json, lambda: "\n".join([
        f"devnet up: {d.url}  chain {d.chain_id}  pid {d.pid}",
        *[f"  {n:<18} {a}" for n, a in state["contracts"].items()],
        "  manifest           deployments/devnet.json",
        "  test accounts      --dev-account 0..9 (anvil's public keys: devnet only)",
    ]))


@devnet.command("down")
def devnet_down() -> None:
    """Stop the devnet started by `devnet up` (by its PID)."""
    state = devnet_state()
    if not state:
        raise CliError("no devnet is up (nothing in .pactbond/devnet.json)")
    pid = int(state.get("pid", 0))
    if _ours(state):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _exists(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
    DEVNET_STATE.unlink(missing_ok=True)
    click.echo(f"devnet down (pid {pid})")


@devnet.command("status")
@json_option
def devnet_status(as_json: bool) -> None:
    """Is the devnet up, and at which block?"""
    from pactbond.devnet import rpc

    state = devnet_state()
    if not state:
        emit({"up": False}, as_json, "devnet: down")
        raise SystemExit(1)
    up = _ours(state)
    block = int(rpc(state["url"], "eth_blockNumber"), 16) if up else None
    out = {**state, "up": up, "block": block}
    emit(out, as_json, f"devnet: {'up' if up else 'down'} {state['url']} chain "
                       f"{state['chain_id']} pid {state['pid']}" + (f" block {block}" if up
                                                                     else ""))
    if not up:
        raise SystemExit(1)


# -- deploy ------------------------------------------------------------------------------------


@click.command()
@click.option("--network", required=True, help="an ape network, e.g. ethereum:sepolia:node")
@click.option("--account", "ape_alias", help="the ape account that deploys")
def deploy(network: str, ape_alias: str | None) -> None:
    """Deploy to any network ape knows (`ape run deploy`); writes deployments/<network>.json."""
    import shutil
    import subprocess
    import sys

    ape = shutil.which("ape") or str(Path(sys.executable).parent / "ape")
    if not Path(ape).exists():
        raise CliError("deploying to a named network needs ape: install pactbond[ape]")
    if not Path("scripts/deploy.py").is_file():
        raise CliError("`pactbond deploy` runs the project's scripts/deploy.py with ape: run it "
                       "from the pactbond source tree")
    cmd = [ape, "run", "deploy", "--network", network]
    if ape_alias:
        cmd += ["--account", ape_alias]
    raise SystemExit(subprocess.call(cmd))  # noqa: S603 (argv built from checked parts)


# -- stake -------------------------------------------------------------------------------------


@click.group()
def stake() -> None:
    """Agent and evaluator stake."""


def _decimals(pb: Pactbond, asset: str) -> int:
    return 18 if asset == ZERO_ADDRESS else pb.token_decimals(asset)


def _sym(asset: str) -> str:
    return "ETH" if asset == ZERO_ADDRESS else "units"


def _amount(pb: Pactbond, asset: str, wei: int) -> str:
    """An amount in base units, shown in the asset's units (ETH, or the token's decimals)."""
    return fmt_amount(wei, _decimals(pb, asset), _sym(asset))


@stake.command("deposit")
@click.argument("amount")
@click.option("--asset", help="ERC-20 address (default ETH)")
@click.option("--evaluator", is_flag=True, help="evaluator stake (default: agent stake)")
@wallet_options
def stake_deposit(amount: str, asset: str | None, evaluator: bool, **kw: Any) -> None:
    """Deposit AMOUNT (in the asset's units, e.g. 1.5) as stake."""
    pb = connect(kw, need_wallet=True)
    a = asset_arg(asset)
    wei = parse_amount(amount, _decimals(pb, a))
    if wei == 0:
        raise InvalidInputError("amount must be above 0")
    role = "evaluator" if evaluator else "agent"
    confirm(kw, f"stake {fmt_amount(wei, _decimals(pb, a), _sym(a))} as {role} from "
                f"{pb.address}")
    pb.stake(wei, a, evaluator=evaluator, approve=True)  # approves only once its checks pass
    click.echo(f"staked {fmt_amount(wei, _decimals(pb, a), _sym(a))} ({role})")


@stake.command("unstake")
@click.argument("amount")
@click.option("--asset")
@wallet_options
def stake_unstake(amount: str, asset: str | None, **kw: Any) -> None:
    """Evaluator: start the cooldown for AMOUNT of unreserved stake."""
    pb = connect(kw, need_wallet=True)
    a = asset_arg(asset)
    wei = parse_amount(amount, _decimals(pb, a))
    confirm(kw, f"request unstake of {fmt_amount(wei, _decimals(pb, a), _sym(a))}")
    pb.request_unstake(wei, a)
    s = pb.evaluator_stake(pb.address, a)
    click.echo(f"unstake requested: withdrawable after {s.unlock_at} (chain time)")


@stake.command("withdraw")
@click.argument("amount", required=False)
@click.option("--asset")
@click.option("--evaluator", is_flag=True, help="withdraw all pending evaluator stake")
@wallet_options
def stake_withdraw(amount: str | None, asset: str | None, evaluator: bool, **kw: Any) -> None:
    """Withdraw AMOUNT of free agent stake, or (--evaluator) all pending evaluator stake once
    its cooldown is over."""
    if evaluator == (amount is not None):
        raise click.UsageError("give AMOUNT for agent stake, or --evaluator without AMOUNT")
    pb = connect(kw, need_wallet=True)
    a = asset_arg(asset)
    d, sym = _decimals(pb, a), _sym(a)
    wei = pb.evaluator_stake(pb.address, a).pending if evaluator else parse_amount(str(amount), d)
    confirm(kw, f"withdraw {fmt_amount(wei, d, sym)} of stake")
    if evaluator:
        pb.withdraw_evaluator_stake(a)
    else:
        pb.withdraw_stake(wei, a)
    click.echo(f"withdrew {fmt_amount(wei, d, sym)}")


@stake.command("show")
@click.argument("who", required=False)
@click.option("--asset")
@json_option
@wallet_options
def stake_show(who: str | None, asset: str | None, as_json: bool, **kw: Any) -> None:
    """An address's agent and evaluator stake (default: the wallet's)."""
    pb = connect(kw)
    acct = address(who) if who else pb.address
    a = asset_arg(asset)
    out = {"address": acct, "asset": a, "agent": pb.agent_stake(acct, a).model_dump(),
           "evaluator": pb.evaluator_stake(acct, a).model_dump(), "credit": pb.credit(acct, a)}
    emit(out, as_json)


# -- pacts -------------------------------------------------------------------------------------


@click.group()
def pact() -> None:
    """Pacts: the terms a job is judged and paid by."""


def terms_from_file(path: str) -> tuple[PactTerms, bytes | None]:
    """Pact terms from YAML/JSON; `spec: FILE` is hashed (keccak-256 of its bytes) into
    spec_hash and its bytes returned so they can be kept beside the others."""
    doc = load_document(path)
    spec_bytes: bytes | None = None
    if "spec" in doc:
        sp = Path(str(doc.pop("spec")))
        if not sp.is_absolute():
            sp = Path(path).parent / sp
        try:
            spec_bytes = sp.read_bytes()
        except OSError as e:
            raise InvalidInputError(f"spec document {sp}: {e.strerror} (`spec:` names the "
                                    "evaluation spec file, relative to the pact file)") from None
        doc["spec_hash"] = content_hash(spec_bytes)
    try:
        return PactTerms(**doc), spec_bytes
    except ValidationError as e:
        lines = [f"{'.'.join(str(x) for x in err['loc']) or 'pact'}: {err['msg']}"
                 for err in e.errors()]
        raise InvalidInputError(f"{path}: " + "; ".join(lines)) from None


@pact.command("create")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@wallet_options
def pact_create(file: str, as_json: bool, **kw: Any) -> None:
    """Create a pact from FILE (YAML or JSON terms; `spec: FILE` names the evaluation spec)."""
    terms, spec_bytes = terms_from_file(file)
    if spec_bytes is not None:
        from pactbond.oracle.spec import Spec

        Spec.parse(spec_bytes).check_terms(terms.model_copy(
            update={"spec_hash": content_hash(spec_bytes)}))
    pb = connect(kw, need_wallet=True)
    confirm(kw, f"create a pact on committee {terms.committee_id}")
    pid = pb.create_pact(terms)
    if spec_bytes is not None:
        Library([STATE_DIR / "documents"]).add(spec_bytes)
    emit({"pact_id": pid, "spec_hash": terms.spec_hash}, as_json,
         f"pact {pid} created (spec {hex32(terms.spec_hash)})")


@pact.command("show")
@click.argument("pact_id", type=click.IntRange(min=1))
@json_option
@connection_options
def pact_show(pact_id: int, as_json: bool, **kw: Any) -> None:
    """A pact's terms and record."""
    pb = connect(kw)
    terms = pb.pact(pact_id).model_dump()
    record = pb.pact_reputation(pact_id).model_dump()
    emit({"pact_id": pact_id, "terms": terms, "record": record}, as_json, lambda: "\n".join(
        [f"pact {pact_id}"] + [f"  {k:<22} {v}" for k, v in _flat(terms).items()]
        + [f"  record.{k:<15} {v}" for k, v in record.items()]))


def _flat(d: dict[str, Any]) -> dict[str, Any]:
    return {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in d.items()}


# -- committees --------------------------------------------------------------------------------


@click.group()
def committee() -> None:
    """Evaluator committees and their versions."""


def _members(text: str) -> list[str]:
    return [address(m.strip(), "member") for m in text.split(",") if m.strip()]


@committee.command("create")
@click.option("--members", required=True, help="comma-separated addresses")
@click.option("--threshold", type=click.IntRange(min=1), required=True)
@click.option("--bond", required=True, help="evaluator bond (asset units)")
@click.option("--penalty", required=True, help="penalty per job (asset units)")
@click.option("--asset")
@click.option("--rotation-delay", type=click.IntRange(min=0))
@json_option
@wallet_options
def committee_create(members: str, threshold: int, bond: str, penalty: str, asset: str | None,
                     rotation_delay: int | None, as_json: bool, **kw: Any) -> None:
    """Create a committee (its first version is in force at once)."""
    pb = connect(kw, need_wallet=True)
    a = asset_arg(asset)
    d = _decimals(pb, a)
    cid = pb.create_committee(_members(members), threshold, parse_amount(bond, d, "bond"),
                              parse_amount(penalty, d, "penalty"), a, rotation_delay)
    emit({"committee_id": cid}, as_json, f"committee {cid} created")


@committee.command("rotate")
@click.argument("committee_id", type=click.IntRange(min=1))
@click.option("--members", required=True)
@click.option("--threshold", type=click.IntRange(min=1), required=True)
@click.option("--bond", required=True)
@click.option("--penalty", required=True)
@json_option
@wallet_options
def committee_rotate(committee_id: int, members: str, threshold: int, bond: str, penalty: str,
                     as_json: bool, **kw: Any) -> None:
    """Propose the committee's next version (in force after the rotation delay)."""
    pb = connect(kw, need_wallet=True)
    d = _decimals(pb, pb.committee(committee_id).asset)
    vid = pb.propose_version(committee_id, _members(members), threshold,
                             parse_amount(bond, d, "bond"), parse_amount(penalty, d, "penalty"))
    emit({"version_id": vid}, as_json, f"version {vid} proposed for committee {committee_id}")


@committee.command("accept")
@click.argument("version_id", type=click.IntRange(min=1))
@wallet_options
def committee_accept(version_id: int, **kw: Any) -> None:
    """Evaluator: consent to serve in a committee version."""
    pb = connect(kw, need_wallet=True)
    pb.accept_version(version_id)
    click.echo(f"{pb.address} accepted version {version_id}")


@committee.command("approve-pact")
@click.argument("committee_id", type=click.IntRange(min=1))
@click.argument("pact_id", type=click.IntRange(min=1))
@wallet_options
def committee_approve(committee_id: int, pact_id: int, **kw: Any) -> None:
    """Committee admin: let PACT_ID name this committee."""
    pb = connect(kw, need_wallet=True)
    pb.approve_pact(committee_id, pact_id)
    click.echo(f"committee {committee_id} approved pact {pact_id}")


@committee.command("revoke")
@wallet_options
def committee_revoke(**kw: Any) -> None:
    """Evaluator: revoke your own key at once (for every committee)."""
    pb = connect(kw, need_wallet=True)
    confirm(kw, f"revoke {pb.address}'s key in every committee (irreversible)")
    pb.revoke_key()
    click.echo(f"{pb.address} revoked")


@committee.command("show")
@click.argument("committee_id", type=click.IntRange(min=1))
@json_option
@connection_options
def committee_show(committee_id: int, as_json: bool, **kw: Any) -> None:
    """A committee and its current version's roster."""
    pb = connect(kw)
    c = pb.committee(committee_id)
    r = pb.roster(c.current_version)
    emit({"committee": c.model_dump(), "roster": r.model_dump()}, as_json, lambda: "\n".join([
        f"committee {committee_id}: admin {c.admin}, version {c.current_version}, "
        f"{r.threshold}-of-{len(r.members)}, bond {_amount(pb, c.asset, r.bond)}, "
        f"penalty {_amount(pb, c.asset, r.penalty)}",
        # `active` is accepted and not revoked: a member that never accepted is not revoked
        *[f"  {m}  {'accepted' if m in r.accepted else 'not accepted'}"
          f"{', revoked' if m in r.accepted and m not in r.active else ''}"
          for m in r.members]]))


# -- jobs --------------------------------------------------------------------------------------


@click.group()
def job() -> None:
    """Jobs: open, accept, submit, cancel, inspect."""


def _spec_dirs(extra: tuple[str, ...]) -> list[Path]:
    return [Path(p) for p in extra] + [STATE_DIR / "documents", Path("specs")]


@job.command("open")
@click.argument("pact_id", type=click.IntRange(min=1))
@click.option("--agent", required=True, help="the agent's address")
@click.option("--value", required=True, help="the job's value (asset units, e.g. 0.5)")
@click.option("--spec-dir", multiple=True, help="where the pact's spec document is")
@json_option
@wallet_options
def job_open(pact_id: int, agent: str, value: str, spec_dir: tuple[str, ...], as_json: bool,
             **kw: Any) -> None:
    """Buyer: open and fund a job (value + the pact's evaluator fee)."""
    who = address(agent, "agent")
    pb = connect(kw, need_wallet=True)
    t = pb.pact(pact_id)
    wei = parse_amount(value, _decimals(pb, t.asset), "value")
    # a job on a pact whose evaluation spec does not load could never be judged as agreed
    try:
        Library(_spec_dirs(spec_dir)).spec(t.spec_hash).check_terms(t)
    except SpecError as e:
        todo = ("pass --spec-dir DIR holding the spec document the pact names"
                if str(e).startswith("no document") else "this pact cannot take jobs")
        raise CliError(f"pact {pact_id}'s spec does not load, so no job is opened: {e} "
                       f"({todo})") from None
    d, s = _decimals(pb, t.asset), _sym(t.asset)
    confirm(kw, f"pay {fmt_amount(wei + t.evaluator_fee, d, s)} (value "
                f"{fmt_amount(wei, d, s)} + fee {fmt_amount(t.evaluator_fee, d, s)}) into "
                f"escrow for agent {who}")
    jid = pb.open_job(pact_id, who, wei, approve=True)  # approves only once its checks pass
    emit({"job_id": jid}, as_json, f"job {jid} opened")


@job.command("accept")
@click.argument("job_id", type=click.IntRange(min=1))
@wallet_options
def job_accept(job_id: int, **kw: Any) -> None:
    """Agent: accept a job (locks the bond)."""
    pb = connect(kw, need_wallet=True)
    pb.accept(job_id)
    click.echo(f"job {job_id} accepted")


@job.command("submit")
@click.argument("job_id", type=click.IntRange(min=1))
@click.option("--file", "file_", type=click.Path(dir_okay=False, exists=True),
              help="the deliverable (its keccak-256 is submitted)")
@click.option("--hash", "hash_", help="the deliverable's hash, if not --file")
@click.option("--uri", default="", help="where oracles can fetch the bytes")
@click.option("--upload", multiple=True, help="oracle API URLs to upload the bytes to")
@wallet_options
def job_submit(job_id: int, file_: str | None, hash_: str | None, uri: str,
               upload: tuple[str, ...], **kw: Any) -> None:
    """Agent: submit a deliverable's hash (uploading the bytes to the oracles first)."""
    if (file_ is None) == (hash_ is None):
        raise click.UsageError("give exactly one of --file or --hash")
    data = Path(file_).read_bytes() if file_ else None
    h = content_hash(data) if data is not None else hash32(str(hash_), "--hash")
    if upload and data is None:
        raise click.UsageError("--upload needs --file")
    pb = connect(kw, need_wallet=True)
    for api in upload:
        import requests

        r = requests.post(f"{api.rstrip('/')}/deliverables", data=data, timeout=30,
                          headers={"X-Content-Hash": hex32(h)})
        if r.status_code not in (200, 201):
            raise CliError(f"upload to {api} refused: {r.status_code} {r.text[:200]}")
    pb.submit(job_id, h, uri)
    click.echo(f"job {job_id} submitted: deliverable {hex32(h)}")


@job.command("cancel")
@click.argument("job_id", type=click.IntRange(min=1))
@wallet_options
def job_cancel(job_id: int, **kw: Any) -> None:
    """Buyer (before acceptance) or anyone (after the accept deadline): refund the job."""
    pb = connect(kw, need_wallet=True)
    confirm(kw, f"cancel job {job_id}")
    pb.cancel(job_id)
    click.echo(f"job {job_id} cancelled: value and fee credited to the buyer")


@job.command("show")
@click.argument("job_id", type=click.IntRange(min=1))
@json_option
@connection_options
def job_show(job_id: int, as_json: bool, **kw: Any) -> None:
    """A job: state, parties, deadlines, money and votes."""
    pb = connect(kw)
    if job_id > pb.job_count():
        raise CliError(f"no job {job_id}: this deployment has {pb.job_count()} jobs")
    j = pb.job(job_id)
    emit(j, as_json)


@job.command("list")
@click.option("--pact", "pact_id", type=click.IntRange(min=1))
@click.option("--state", type=click.Choice([s.name.lower() for s in JobState]))
@json_option
@connection_options
def job_list(pact_id: int | None, state: str | None, as_json: bool, **kw: Any) -> None:
    """Every job (optionally of one pact, in one state)."""
    pb = connect(kw)
    rows: list[dict[str, Any]] = []
    shown: list[str] = []  # JSON keeps base units; the table shows values in the pact's asset
    for jid in range(1, pb.job_count() + 1):
        j = pb.job(jid)
        if pact_id is not None and j.pact_id != pact_id:
            continue
        if state is not None and j.state.name.lower() != state:
            continue
        rows.append({"job_id": jid, "pact_id": j.pact_id, "state": j.state.name,
                     "buyer": j.buyer, "agent": j.agent, "value": j.value})
        shown.append(_amount(pb, pb.pact(j.pact_id).asset, j.value))
    width = max([len("value"), *map(len, shown)])
    emit(rows, as_json, lambda: "\n".join(
        [f"  id  pact  state               {'value':>{width}}  agent"]
        + [f"{r['job_id']:>4}  {r['pact_id']:>4}  {r['state']:<19} {v:>{width}}  {r['agent']}"
           for r, v in zip(rows, shown, strict=True)]) if rows else "no jobs")


# -- votes -------------------------------------------------------------------------------------


@click.group()
def vote() -> None:
    """EIP-712 votes and vote batches: sign, verify, submit."""


def _emit(doc: dict[str, Any], out: str | None, what: str) -> None:
    """Write a signed document (hashes and signatures as 0x hex) to `out`, saying so, or
    print it."""
    text = json.dumps(to_jsonable(doc), indent=2)
    if out:
        Path(out).write_text(text + "\n")
        click.echo(f"{what} written to {out}")
    else:
        click.echo(text)


def _load_signed(path: str) -> SignedVote | SignedVoteBatch:
    """A file `vote sign` (a vote) or `vote sign-batch` (a batch) wrote."""
    doc = load_document(path)
    batch = "batch" in doc
    try:
        sig = bytes.fromhex(str(doc.get("signature", "")).removeprefix("0x"))
        if batch:
            return SignedVoteBatch.model_validate({**doc, "signature": sig})
        return SignedVote.model_validate({**doc, "signature": sig})
    except (ValidationError, ValueError) as e:
        raise InvalidInputError(f"{path} is not a signed vote{' batch' if batch else ''}: "
                                f"{str(e).splitlines()[0]}") from None


def _triple(text: str) -> tuple[int, int, bytes]:
    """JOB_ID:SCORE:EVIDENCE_HASH."""
    m = re.fullmatch(r"([0-9]+):([0-9]+):([^:]*)", text)
    if m:
        jid, score = int(m[1]), int(m[2])
        if jid >= 1 and score <= 10_000:
            return jid, score, hash32(m[3], f"evidence of vote {text!r}:")
    raise InvalidInputError(f"vote {text!r} is not JOB_ID:SCORE:EVIDENCE_HASH (a job id >= 1, "
                            "a score of 0..10000 bps, 0x and 64 hex digits)")


@vote.command("sign")
@click.argument("job_id", type=click.IntRange(min=1))
@click.argument("score", type=click.IntRange(0, 10_000))
@click.option("--evidence", required=True, help="the evidence packet's hash")
@click.option("--round", "round_", type=click.IntRange(0, 1), default=0)
@click.option("--out", type=click.Path(dir_okay=False), help="write the vote here")
@wallet_options
def vote_sign(job_id: int, score: int, evidence: str, round_: int, out: str | None,
              **kw: Any) -> None:
    """Evaluator: sign a vote SCORE (basis points) for JOB_ID."""
    pb = connect(kw, need_wallet=True)
    sv = pb.sign_vote(pb.vote_for(job_id, score, hash32(evidence, "--evidence"), round_))
    _emit({"vote": sv.vote, "member": sv.member, "signature": sv.signature}, out, "vote")


@vote.command("sign-batch")
@click.argument("votes", nargs=-1, required=True)
@click.option("--round", "round_", type=click.IntRange(0, 1), default=0)
@click.option("--out", type=click.Path(dir_okay=False), help="write the batch here")
@wallet_options
def vote_sign_batch(votes: tuple[str, ...], round_: int, out: str | None, **kw: Any) -> None:
    """Evaluator: sign one VoteBatch over VOTES, each JOB_ID:SCORE:EVIDENCE_HASH (one
    signature for them all; `vote submit` posts batches with settle_batch)."""
    parsed = [_triple(v) for v in votes]
    pb = connect(kw, need_wallet=True)
    sb = pb.sign_batch(pb.vote_batch(parsed, round_))
    _emit({"batch": sb.batch, "member": sb.member, "signature": sb.signature}, out,
          f"batch of {len(sb.batch.votes)} votes")


@vote.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@connection_options
def vote_verify(file: str, **kw: Any) -> None:
    """Would this vote (or every vote of this batch) count if posted now?"""
    sv = _load_signed(file)
    pb = connect(kw)
    if isinstance(sv, SignedVoteBatch):
        pb.verify_batch(sv)
        click.echo(f"valid: {sv.member}'s batch of {len(sv.batch.votes)} votes "
                   f"(round {sv.batch.round})")
        return
    pb.verify_vote(sv)
    click.echo(f"valid: {sv.member} scores job {sv.vote.job_id} {sv.vote.score_bps} bps")


@vote.command("submit")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@wallet_options
def vote_submit(files: tuple[str, ...], **kw: Any) -> None:
    """Post signed votes (one job, one round), or signed vote batches (one pact, one round,
    one per member: every vote of each in one settle_batch call) on-chain."""
    signed = [_load_signed(f) for f in files]
    batches = [b for b in signed if isinstance(b, SignedVoteBatch)]
    votes = [v for v in signed if isinstance(v, SignedVote)]
    if batches and votes:
        raise InvalidInputError("pass signed votes or signed vote batches, not both")
    if batches:
        if len({b.batch.round for b in batches}) != 1:
            raise InvalidInputError("all batches must be of the same round")
        pb = connect(kw, need_wallet=True)
        rnd = batches[0].batch.round
        jobs = sorted({v.job_id for b in batches for v in b.batch.votes})
        pacts = sorted({pb.job(j).pact_id for j in jobs})
        if len(pacts) > 1:
            raise InvalidInputError(f"the batches cover jobs of pacts {pacts}: one settle_batch "
                                    "call covers one pact")
        pb.settle_batch(pacts[0], rnd, batches)
        n = sum(len(b.batch.votes) for b in batches)
        click.echo(f"{n} vote(s) in {len(batches)} batch(es) posted for {len(jobs)} job(s)")
        return
    if len({(v.vote.job_id, v.vote.round) for v in votes}) != 1:
        raise InvalidInputError("all votes must be for the same job and round")
    pb = connect(kw, need_wallet=True)
    jid, rnd = votes[0].vote.job_id, votes[0].vote.round
    (pb.appeal if rnd else pb.settle)(jid, votes)
    click.echo(f"{len(votes)} vote(s) posted for job {jid}: now {pb.job(jid).state.name}")


# -- challenge, keeper, withdraw ---------------------------------------------------------------


@click.command()
@click.argument("job_id", type=click.IntRange(min=1))
@click.option("--expected-score", type=click.IntRange(0, 10_000),
              help="the verdict you challenge (default: read now)")
@wallet_options
def challenge(job_id: int, expected_score: int | None, **kw: Any) -> None:
    """Buyer or agent: challenge a verdict (pays the challenge bond)."""
    pb = connect(kw, need_wallet=True)
    t = pb.pact(pb.job(job_id).pact_id)
    confirm(kw, f"challenge job {job_id}, paying a bond of "
                f"{fmt_amount(t.challenge_bond, _decimals(pb, t.asset), _sym(t.asset))}")
    pb.challenge(job_id, expected_score)
    click.echo(f"job {job_id} challenged: the appeal committee judges it")


FINAL_DEPTH = 64  # blocks after which keeper passes stop re-reading an ended job


def _ended_at(pb: Pactbond, job_id: int, block: int) -> bool:
    """Had the job ended by `block`? (False if it did not exist yet there.)"""
    try:
        return pb.job(job_id, block=block).state.terminal
    except (PactbondError, ValueError, DecodingError):  # no job (state 0) or no code there
        return False


def keeper_pass(pb: Pactbond, start: int = 1, pending: dict[tuple[int, str], bytes] | None = None,
                ) -> tuple[list[tuple[int, str, str | None]], int]:
    """Finalize, expire and resolve every job from `start` on that is due now. Returns what was
    tried, each (job, action, None when done else the reason it was not), and the first job id
    not yet known to be over (every job before it has ended, FINAL_DEPTH blocks deep, so a
    reorg cannot bring it back), where the next pass may start. A refused call (another keeper
    got there first, say) does not stop the pass. `pending` (kept across passes) holds the
    transactions sent but not yet mined: their duty is not sent again while the node holds
    them (a second copy would only revert and cost gas)."""
    pending = {} if pending is None else pending
    tried: list[tuple[int, str, str | None]] = []
    at = pb.next_block_time()
    deep = max(int(pb.w3.eth.block_number) - FINAL_DEPTH, pb.manifest.block)
    ended = True
    for jid in range(start, pb.job_count() + 1):
        try:
            j = pb.job(jid)
        except JobLogsError as e:  # this job's logs do not rebuild it now: the others go on
            ended = False
            tried.append((jid, "read", str(e)))
            continue
        if j.state.terminal:
            if ended and _ended_at(pb, jid, deep):
                start = jid + 1
            else:
                # ended at the head but not FINAL_DEPTH back: a reorg may still undo it, so no
                # later job may move the start past it
                ended = False
            continue
        ended = False
        t = pb.pact(j.pact_id)
        action = None
        if j.state == JobState.VERDICT and at > j.round0_close + t.challenge_window:
            action = "finalize"
        elif j.state in (JobState.ACCEPTED, JobState.SUBMITTED) and at > j.deadline:
            action = "expire"
        elif j.state == JobState.CHALLENGED and at > j.deadline:
            action = "resolve"
        if action:
            sent = pending.get((jid, action))
            if sent is not None:
                if pb.tx_status(sent) == "pending":
                    tried.append((jid, action, f"waiting for transaction 0x{sent.hex()}"))
                    continue
                del pending[(jid, action)]  # mined (and the job still due) or dropped: again
            try:
                getattr(pb, action)(jid)
                tried.append((jid, action, None))
            except ContractError as e:
                tried.append((jid, action, str(e)))
            except TxPendingError as e:
                pending[(jid, action)] = e.tx_hash
                tried.append((jid, action, str(e)))
    return tried, start


@click.group()
def keeper() -> None:
    """Keeper duties anyone may perform."""


@keeper.command("run")
@click.option("--once", is_flag=True, help="one pass, then exit (exit code 1 if a duty failed)")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0)
@wallet_options
def keeper_run(once: bool, interval: float, **kw: Any) -> None:
    """Finalize, expire and resolve due jobs (repeatedly unless --once). A duty that fails is
    reported on stderr and the pass goes on; in a loop, so does an unreachable node."""
    pb = connect(kw, need_wallet=True)
    start = 1
    pending: dict[tuple[int, str], bytes] = {}
    while True:
        try:
            tried, start = keeper_pass(pb, start, pending)
        except (NodeError, OSError, Web3Exception) as e:  # OSError: requests' connection errors
            if once:
                raise
            click.echo(f"keeper: node unavailable ({str(e)[:200]}); retrying in {interval:g} s",
                       err=True)
            tried = []
        for jid, action, error in tried:
            if error is None:
                click.echo(f"job {jid}: {action}")
            else:
                click.echo(f"job {jid}: {action} not done: {error}", err=True)
        if once:
            if any(error for *_, error in tried):
                raise SystemExit(1)
            return
        time.sleep(interval)


@click.command()
@click.option("--asset")
@click.option("--to", "to", help="send to this address (default: yourself)")
@wallet_options
def withdraw(asset: str | None, to: str | None, **kw: Any) -> None:
    """Withdraw every credit you hold in an asset."""
    dest = address(to, "--to") if to else None  # refused before anything is asked or sent
    pb = connect(kw, need_wallet=True)
    a = asset_arg(asset)
    amount = pb.credit(pb.address, a)
    if amount == 0:
        raise CliError(f"nothing to withdraw: {pb.address} has no credit in "
                       f"{'ETH' if a == ZERO_ADDRESS else a}")
    confirm(kw, f"withdraw {fmt_amount(amount, _decimals(pb, a), _sym(a))}")
    got = pb.withdraw(a, dest)
    click.echo(f"withdrew {fmt_amount(got, _decimals(pb, a), _sym(a))}")


# -- report ------------------------------------------------------------------------------------


@click.command()
@click.argument("rollout", type=click.Path(dir_okay=False))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="write a PNG of each stage's outcomes over time")
@click.option("--confirmations", type=click.IntRange(min=0), default=0, show_default=True,
              help="count only events at least this many blocks deep (on a live chain, so that "
                   "a reorg cannot take back what the expansion rule counted)")
@json_option
@connection_options
def report(rollout: str, plot_path: str | None, confirmations: int, as_json: bool,
           **kw: Any) -> None:
    """Is the rollout earning trust? Per stage: outcomes, money, challenges, the expansion
    rule."""
    from pactbond import report as rep

    try:
        r = rep.load_rollout(Path(rollout))
    except UnicodeDecodeError:
        raise InvalidInputError(f"rollout file {rollout} is not a text file: expected YAML or "
                                "JSON") from None
    pb = connect(kw)
    result = rep.build_report(pb, r, confirmations=confirmations)
    if plot_path:
        rep.plot(result, Path(plot_path))
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        click.echo(rep.render_table(result))
        if plot_path:
            click.echo(f"plot: {plot_path}")

"""Deploy pactbond with ape: `ape run deploy [--network ecosystem:network:provider] [--account A]`.

Compiles the project's contracts (ape-vyper, pinned 0.4.3 / prague in ape-config.yaml), deploys
PactRegistry -> PactEscrowBatch -> PactEscrowAppeals -> PactEscrow -> registry.set_escrow
(-> set_guardian), and writes the same manifest as `pactbond.deploy` to
deployments/<network>.json. On a local network the deployer defaults to the first test account;
elsewhere pass --account.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand, account_option, network_option
from eth_utils.crypto import keccak

from pactbond.deploy import (
    CONTRACTS,
    DAY,
    HOUR,
    ContractRecord,
    DeployConstants,
    Manifest,
    artifact,
)


def _stale(loaded: dict[str, Any]) -> list[str]:
    """Contracts whose ape-compiled bytecode differs from the shipped artifact."""
    def norm(code: Any) -> str:
        return str(code).lower().removeprefix("0x")

    return [n for n in CONTRACTS
            if n not in loaded
            or norm(loaded[n].contract_type.deployment_bytecode.bytecode)
            != norm(artifact(n)["bytecode"])]


def _contracts() -> dict[str, Any]:
    """The project's compiled contracts, checked against the shipped artifacts.

    ape-vyper's cache does not track `from .modules import ...`: after a change to a module
    only, ape would deploy stale bytecode. A mismatch forces one full recompile; if the fresh
    build still differs, the shipped artifacts are stale and nothing is deployed.
    """
    loaded: dict[str, Any] = project.load_contracts()
    stale = _stale(loaded)
    if stale:
        click.echo(f"ape's build cache is stale for {stale}: recompiling")
        loaded = project.load_contracts(use_cache=False)
        stale = _stale(loaded)
        if stale:
            raise click.ClickException(
                f"{stale}: ape's build differs from src/pactbond/artifacts; run `make build`"
            )
    return loaded


def _code_hash(address: str) -> str:
    code = bytes(chain.provider.get_code(address))
    if not code:
        raise click.ClickException(f"no code at {address}")
    return "0x" + keccak(code).hex()


def _manifest_name(ecosystem: str, network: str) -> str:
    return network if ecosystem == "ethereum" else f"{ecosystem}-{network}"


@click.command(cls=ConnectedProviderCommand)
@network_option()
@account_option(prompt=False)  # an alias or TEST::<n>; default on local networks: TEST::0
@click.option("--window-max", type=int, default=7 * DAY, show_default=True)
@click.option("--min-rotation-delay", type=int, default=HOUR, show_default=True)
@click.option("--evaluator-cooldown", type=int, default=36 * DAY, show_default=True)
@click.option("--guardian", default=None, help="address allowed to pause (optional)")
@click.option("--out-dir", type=click.Path(path_type=Path), default=None,
              help="where to write <network>.json (default: <project>/deployments)")
def cli(
    network: Any, account: Any, window_max: int, min_rotation_delay: int,
    evaluator_cooldown: int, guardian: str | None, out_dir: Path | None,
) -> None:
    """Deploy PactRegistry, PactEscrowBatch, PactEscrowAppeals and PactEscrow and write the
    manifest."""
    net = chain.provider.network
    if account is None:
        if not net.is_local:
            raise click.UsageError(f"network {net.choice} is not local: pass --account <alias>")
        from ape import accounts

        account = accounts.test_accounts[0]
    constants = DeployConstants(
        window_max=window_max, min_rotation_delay=min_rotation_delay,
        evaluator_cooldown=evaluator_cooldown,
    )
    c = _contracts()
    registry = account.deploy(c["PactRegistry"], constants.window_max,
                              constants.min_rotation_delay)
    batch = account.deploy(c["PactEscrowBatch"], registry.address, constants.evaluator_cooldown)
    appeals = account.deploy(c["PactEscrowAppeals"], registry.address,
                             constants.evaluator_cooldown, batch.address)
    escrow = account.deploy(c["PactEscrow"], registry.address, constants.evaluator_cooldown,
                            appeals.address)
    registry.set_escrow(escrow.address, sender=account)
    if guardian:
        registry.set_guardian(guardian, sender=account)
    assert registry.escrow() == escrow.address
    first = chain.provider.get_receipt(registry.txn_hash)
    addresses = {"PactRegistry": registry.address, "PactEscrow": escrow.address,
                 "PactEscrowAppeals": appeals.address, "PactEscrowBatch": batch.address}
    name = _manifest_name(net.ecosystem.name, net.name)
    manifest = Manifest(
        chain_id=chain.chain_id,
        network=name,
        block=first.block_number,
        deployer=account.address,
        contracts={n: ContractRecord(address=a, code_hash=_code_hash(a))
                   for n, a in addresses.items()},
        constants=constants,
    )
    path = manifest.save(Manifest.path_for(name, out_dir or project.path / "deployments"))
    click.echo(f"deployed on {net.choice} (chain {manifest.chain_id}) at block {manifest.block}")
    for n, a in addresses.items():
        click.echo(f"  {n:<18} {a}")
    click.echo(f"manifest: {path}")

"""The `pactbond` command line."""

from __future__ import annotations

import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pactbond")
def cli() -> None:
    """pactbond: staked agents, escrowed jobs, committee verdicts on-chain."""


@cli.group()
def oracle() -> None:
    """The evaluator service."""


@oracle.command("run")
@click.option("--config", "config", type=click.Path(dir_okay=False), required=True,
              help="YAML or JSON settings (PACTBOND_* variables override them)")
def oracle_run(config: str) -> None:
    """Watch jobs, evaluate, sign, serve and post votes until SIGTERM."""
    from pactbond.oracle.main import run

    sys.exit(run(config))


def main() -> None:
    cli(prog_name="pactbond")

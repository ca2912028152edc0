"""The `pactbond` command line (also `ape pactbond …` where ape is installed).

Exit codes: 0 done, 1 refused or failed (one line saying what is wrong and what to do), 2 bad
usage. Never a traceback for bad input.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from pactbond.cli import commands
from pactbond.cli.common import CliError
from pactbond.errors import PactbondError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pactbond")
def cli() -> None:
    """pactbond: skin in the game behind AI-agent evaluations.

    Agents stake and bond each job; buyers fund jobs in escrow; a committee of evaluators signs
    verdicts; the contracts release, refund or slash by rules fixed before the work began.
    """


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


@cli.command()
@click.option("--keep", is_flag=True, help="leave the work directory for inspection")
@click.option("--workdir", type=click.Path(file_okay=False), help="default: a temporary one")
def demo(keep: bool, workdir: str | None) -> None:
    """A full rollout on a local chain: oracles, pacts, jobs, a challenge, the report."""
    from pactbond.cli.demo import run_demo

    sys.exit(run_demo(keep=keep, workdir=workdir))


for _cmd in (commands.devnet, commands.deploy, commands.stake, commands.pact,
             commands.committee, commands.job, commands.vote, commands.challenge,
             commands.keeper, commands.withdraw, commands.report):
    cli.add_command(_cmd)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; errors end in one line on stderr and the exit code says which kind."""
    try:
        return cli.main(args=argv, prog_name="pactbond", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("pactbond: aborted", err=True)
        sys.exit(1)
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx else "pactbond"
        # format_message names the parameter ("Invalid value for '--threshold': ...")
        click.echo(f"pactbond: {' '.join(e.format_message().split())} (see `{where} --help`)",
                   err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"pactbond: {' '.join(e.format_message().split())}", err=True)
        sys.exit(e.exit_code)
    except (PactbondError, CliError) as e:
        click.echo(f"pactbond: {_one_line(e)}", err=True)
        sys.exit(1)
    except UnicodeDecodeError:
        click.echo("pactbond: a file given is not text (expected YAML or JSON)", err=True)
        sys.exit(1)
    except OSError as e:
        click.echo(f"pactbond: {e.strerror or _one_line(e)}"
                   + (f": {e.filename}" if e.filename else ""), err=True)
        sys.exit(1)

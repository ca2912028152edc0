"""What every command shares: the connection, the wallet, amounts, addresses, output."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml
from pydantic import BaseModel, ValidationError

from pactbond.client import Pactbond
from pactbond.deploy import Manifest
from pactbond.errors import ConnectionMismatchError, InvalidInputError, PactbondError
from pactbond.models import ZERO_ADDRESS, _address, _bytes32
from pactbond.wallets import ApeWallet, KeyWallet, Wallet

F = TypeVar("F", bound=Callable[..., Any])
STATE_DIR = Path(".pactbond")
DEVNET_STATE = STATE_DIR / "devnet.json"


class CliError(PactbondError):
    """A refusal the CLI reports in one line (exit code 1)."""


# -- options -----------------------------------------------------------------------------------
def connection_options(f: F) -> F:
    f = click.option("--manifest", envvar="PACTBOND_MANIFEST", type=click.Path(dir_okay=False),
                     help="deployment manifest (default: the devnet's)")(f)
    f = click.option("--rpc-url", envvar="PACTBOND_RPC_URL",
                     help="node URL (default: the devnet's)")(f)
    return f


def wallet_options(f: F) -> F:
    f = connection_options(f)
    f = click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")(f)
    f = click.option("--dev-account", type=click.IntRange(0, 9),
                     help="a devnet test account, 0-9 (devnet only)")(f)
    f = click.option("--account", "ape_alias", help="an ape account alias (ape extra)")(f)
    f = click.option("--password-env", help="env var holding the keystore password")(f)
    f = click.option("--keystore", type=click.Path(dir_okay=False),
                     help="an encrypted JSON keystore")(f)
    f = click.option("--key-env", help="env var holding a private key")(f)
    return f


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="print JSON")(f)


# -- the connection ----------------------------------------------------------------------------
def devnet_state() -> dict[str, Any] | None:
    if not DEVNET_STATE.exists():
        return None
    try:
        doc = json.loads(DEVNET_STATE.read_text())
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def resolve(rpc_url: str | None, manifest: str | None) -> tuple[str, Path]:
    state = devnet_state() or {}
    url = rpc_url or state.get("url")
    man = manifest or state.get("manifest")
    if not url or not man:
        raise CliError("no node: run `pactbond devnet up`, or pass --rpc-url and --manifest")
    p = Path(man)
    if not p.exists():
        raise CliError(f"manifest {p} does not exist: deploy first (`pactbond devnet up`)")
    return str(url), p


def open_wallet(key_env: str | None, keystore: str | None, password_env: str | None,
                ape_alias: str | None, dev_account: int | None) -> Wallet | None:
    chosen = [x for x in (key_env, keystore, ape_alias, dev_account) if x is not None]
    if len(chosen) > 1:
        raise click.UsageError("choose one wallet: --key-env, --keystore, --account or "
                               "--dev-account")
    if key_env:
        return KeyWallet.from_env(key_env)
    if keystore:
        return KeyWallet.from_keystore(keystore, password_env=password_env)
    if ape_alias:
        return ApeWallet.load(ape_alias, password_env=password_env)
    if dev_account is not None:
        from pactbond.devnet import dev_account as dev

        return KeyWallet(dev(dev_account))
    return None


def _bad_manifest(path: Path, why: str) -> CliError:
    return CliError(f"manifest {path} is not a deployment manifest ({why}): pass the "
                    "deployments/<network>.json that `devnet up` or `deploy` wrote")


def connect(kw: dict[str, Any], need_wallet: bool = False) -> Pactbond:
    url, man = resolve(kw.get("rpc_url"), kw.get("manifest"))
    wallet = open_wallet(kw.get("key_env"), kw.get("keystore"), kw.get("password_env"),
                         kw.get("ape_alias"), kw.get("dev_account"))
    if need_wallet and wallet is None:
        raise click.UsageError("this command sends a transaction: pass --key-env VAR, "
                               "--keystore FILE or --account ALIAS")
    try:
        m = Manifest.load(man)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise _bad_manifest(man, f"{where}: {err['msg']}" if where else err["msg"]) from None
    except (UnicodeDecodeError, OSError) as e:
        raise _bad_manifest(man, getattr(e, "strerror", None) or "not a text file") from None
    try:
        pb = Pactbond.connect(url, m, wallet)
    except ConnectionMismatchError as e:
        if str(e).startswith("cannot reach the node"):
            raise CliError(f"cannot reach the node at {url}: start it (`pactbond devnet up`) "
                           "or pass the right --rpc-url") from None
        raise
    if kw.get("dev_account") is not None:
        state = devnet_state() or {}
        if state.get("chain_id") != pb.chain_id:
            raise CliError("--dev-account is for the local devnet only (its keys are public)")
    return pb


def confirm(kw: dict[str, Any], what: str) -> None:
    """Value-moving commands ask first, unless --yes."""
    if kw.get("yes"):
        return
    if not click.confirm(f"{what}. Proceed?", default=False, err=True):
        raise CliError("cancelled: nothing was sent")


# -- values ------------------------------------------------------------------------------------
_AMOUNT = re.compile(r"\+?(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?(?:e(?P<exp>[+-]?[0-9]+))?")
U256_MAX = 2**256 - 1


def parse_amount(text: str, decimals: int, what: str = "amount") -> int:
    """A decimal amount in the asset's units ("1.5", "2e3"), or an integer with a `wei` suffix,
    as an exact integer of the smallest unit, by integer arithmetic only: too many decimals and
    amounts above 2**256 - 1 are refused, never rounded."""
    t = text.strip().lower().replace("_", "")
    if len(t) > 400:  # 78 digits and 255 decimals at most; keeps int() clear of its limit
        raise InvalidInputError(f"{what} {text[:20]!r}... is too long for an amount")
    if t.endswith("wei"):
        digits = t[:-3].strip()
        if not re.fullmatch(r"[0-9]+", digits):
            raise InvalidInputError(f"{what} {text!r}: a wei amount is a whole number")
        wei = int(digits)
    else:
        m = _AMOUNT.fullmatch(t)
        if m is None or not (m["int"] or m["frac"]):
            if t.startswith("-"):
                raise InvalidInputError(f"{what} {text!r} must be a non-negative number")
            raise InvalidInputError(f"{what} {text!r} is not a number (e.g. 1.5 or 100wei)")
        frac = m["frac"] or ""
        mantissa = int((m["int"] or "0") + frac)
        shift = decimals - len(frac) + int(m["exp"] or 0)  # wei = mantissa * 10**shift
        if mantissa == 0:
            wei = 0
        elif shift > 80:  # 10**80 > 2**256: no power that large is taken
            wei = U256_MAX + 1
        elif shift < -len(str(mantissa)):  # below one smallest unit
            raise InvalidInputError(
                f"{what} {text!r} has more than {decimals} decimals: the asset's smallest "
                f"unit is 10^-{decimals}")
        elif shift >= 0:
            wei = mantissa * 10**shift
        else:
            wei, rest = divmod(mantissa, 10**-shift)
            if rest:
                raise InvalidInputError(
                    f"{what} {text!r} has more than {decimals} decimals: the asset's smallest "
                    f"unit is 10^-{decimals}")
    if wei > U256_MAX:
        raise InvalidInputError(f"{what} {text!r} is above 2**256 - 1 of the smallest unit")
    return wei


def fmt_amount(wei: int, decimals: int = 18, symbol: str = "ETH") -> str:
    """An exact amount in whole units: 1500000000000000000 -> "1.5 ETH" (no float, no rounding)."""
    sign, wei = ("-", -wei) if wei < 0 else ("", wei)
    whole, frac = divmod(wei, 10**decimals)
    digits = f"{frac:0{decimals}d}".rstrip("0") if decimals else ""
    return f"{sign}{whole}{'.' + digits if digits else ''} {symbol}"


def address(text: str, what: str = "address") -> str:
    try:
        return _address(text)
    except ValueError as e:
        raise InvalidInputError(f"{what}: {e} (expected 0x followed by 40 hex digits)") from None


def hash32(text: str, what: str = "hash") -> bytes:
    try:
        return _bytes32(text)
    except ValueError:
        raise InvalidInputError(f"{what} {text!r} is not 0x followed by 64 hex digits") from None


def asset_arg(text: str | None) -> str:
    return ZERO_ADDRESS if text in (None, "", "eth", "ETH") else address(str(text), "asset")


def load_document(path: str) -> dict[str, Any]:
    """A YAML or JSON mapping from a file, or a one-line error."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise InvalidInputError(f"cannot read {p}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{p} is not a text file: expected YAML or JSON") from None
    try:
        doc = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise InvalidInputError(f"{p} is not valid YAML/JSON: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{p} must hold a mapping of fields")
    return doc


# -- output ------------------------------------------------------------------------------------
def to_jsonable(x: Any) -> Any:
    if isinstance(x, BaseModel):
        return to_jsonable(x.model_dump())
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_jsonable(v) for v in x]
    if isinstance(x, bytes):
        return "0x" + x.hex()
    if hasattr(x, "name") and hasattr(x, "value") and isinstance(x.value, int):
        return x.name  # enums
    return x


def emit(obj: Any, as_json: bool, human: Callable[[], str] | str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(to_jsonable(obj), indent=2, default=str))
    elif human is not None:
        click.echo(human() if callable(human) else human)
    else:
        data = to_jsonable(obj)
        if isinstance(data, dict):
            width = max((len(k) for k in data), default=0)
            for k, v in data.items():
                click.echo(f"{k:<{width}}  {v}")
        else:
            click.echo(str(data))


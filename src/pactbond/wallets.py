"""Wallets that sign pactbond transactions, votes and permits: a raw key, an encrypted keystore,
or an ape account (a hardware wallet, a keyfile account...) behind the `ape` extra.

Secrets stay inside the wallet object: its repr shows only the address, errors never carry the
key or the password (nor chain an exception that does), and nothing here logs.
"""

from __future__ import annotations

import getpass
import importlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_hash.auto import keccak

from pactbond import eip712
from pactbond.errors import WalletError


class Wallet(Protocol):
    """What the client needs from a wallet."""

    @property
    def address(self) -> str: ...

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        """The raw signed transaction for a web3 transaction dict."""
        ...

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        """An EIP-712 signature (r || s || v, v in {27, 28}, low s) of a typed-data document."""
        ...

    def sign_digest(self, digest: bytes) -> bytes:
        """A signature of a raw 32-byte digest (not every wallet allows it)."""
        ...


def typed_data_digest(typed_data: dict[str, Any]) -> bytes:
    """The EIP-712 digest of a typed-data document (what a wallet signs)."""
    m = encode_typed_data(full_message=typed_data)
    return keccak(b"\x19" + m.version + m.header + m.body)


def canonical_signature(r: int, s: int, v: int) -> bytes:
    """r || s || v with v in {27, 28} and s in the lower half (the contract refuses high s)."""
    if v < 27:
        v += 27
    if s > eip712.HALF_N:
        s, v = eip712.SECP256K1_N - s, 55 - v  # the twin: same signer, flipped parity
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


class KeyWallet:
    """A wallet holding a private key in memory."""

    def __init__(self, account: LocalAccount) -> None:
        self._account = account

    @classmethod
    def from_key(cls, key: str | bytes) -> KeyWallet:
        try:
            account = Account.from_key(key)
        except Exception:
            account = None  # raised below, outside this block: no chained error holds the key
        if account is None:
            raise WalletError("not a valid private key (expected 32 bytes of hex)")
        return cls(account)

    @classmethod
    def from_env(cls, var: str) -> KeyWallet:
        value = os.environ.get(var)
        if not value:
            raise WalletError(f"environment variable {var} is not set (it should hold a key)")
        return cls.from_key(value.strip())

    @classmethod
    def from_keystore(
        cls, path: str | Path, password: str | None = None, password_env: str | None = None
    ) -> KeyWallet:
        """Decrypt an encrypted JSON keystore. The password comes from `password`, the
        environment variable `password_env`, or a prompt; a keystore readable by group or others
        is refused."""
        p = Path(path)
        try:
            mode = p.stat().st_mode
            doc = json.loads(p.read_text())
        except FileNotFoundError:
            raise WalletError(f"keystore {p} does not exist") from None
        except (OSError, ValueError) as e:
            raise WalletError(f"keystore {p} is not readable JSON: {type(e).__name__}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise WalletError(
                f"keystore {p} is readable by others (mode {stat.S_IMODE(mode):o}); "
                f"run: chmod 600 {p}"
            )
        if password is None and password_env:
            password = os.environ.get(password_env)
            if password is None:
                raise WalletError(f"environment variable {password_env} is not set")
        if password is None:
            password = getpass.getpass(f"password for {p.name}: ")
        problem = ""
        key = b""
        try:
            key = Account.decrypt(doc, password)
        except ValueError as e:
            # eth-account says "MAC mismatch" for a wrong password; any other ValueError is a
            # damaged file (a ciphertext that is not hex...), and no password would open it
            problem = (f"wrong password for keystore {p}" if "mac mismatch" in str(e).lower()
                       else f"keystore {p} is malformed: its encrypted key is damaged")
        except Exception as e:
            problem = f"keystore {p} is malformed: {type(e).__name__}"
        if problem:
            raise WalletError(problem)
        return cls(Account.from_key(key))

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        return bytes(self._account.sign_transaction(tx).raw_transaction)

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        return self.sign_digest(typed_data_digest(typed_data))

    def sign_digest(self, digest: bytes) -> bytes:
        return eip712.sign_digest(bytes(self._account.key), digest)

    def __repr__(self) -> str:
        return f"KeyWallet({self.address})"

    __str__ = __repr__


def write_keystore(path: str | Path, key: bytes, password: str) -> Path:
    """Encrypt `key` into a keystore file with mode 0600."""
    p = Path(path)
    doc = Account.encrypt(key, password)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode on O_CREAT: 0644 stayed readable
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    return p


def _ape() -> Any:
    """ape, imported only when an ape wallet is used (the `ape` extra)."""
    try:
        return importlib.import_module("ape")
    except ImportError:
        raise WalletError(
            "ape accounts need the ape extra: install pactbond[ape]"
        ) from None


class ApeWallet:
    """An ape account as a pactbond wallet: `ApeWallet.load("alias")` for an account ape
    manages (keyfile, hardware wallet plugin...), or `ApeWallet(account)` for any ape account
    object. Votes and permits go through `sign_message` on EIP-712 data, which every ape
    account type supports; raw digests only where the account allows it."""

    def __init__(self, account: Any) -> None:
        self._account = account

    @classmethod
    def load(
        cls, alias: str, password: str | None = None, password_env: str | None = None
    ) -> ApeWallet:
        """Load ape's account `alias`. A keyfile account given a password (or the environment
        variable `password_env`) is unlocked to sign without prompting; otherwise ape prompts."""
        ape = _ape()
        try:
            account = ape.accounts.load(alias)
        except Exception:
            account = None
        if account is None:
            raise WalletError(f"no ape account named {alias!r} (see `ape accounts list`)")
        if password is None and password_env:
            password = os.environ.get(password_env)
            if password is None:
                raise WalletError(f"environment variable {password_env} is not set")
        if password is not None and hasattr(account, "set_autosign"):
            ok = True
            try:
                account.set_autosign(True, passphrase=password)
            except Exception:
                ok = False
            if not ok:
                raise WalletError(f"cannot unlock ape account {alias!r}: wrong password?")
        return cls(account)

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        ape = _ape()
        fields = {k: v for k, v in tx.items() if k != "from"}
        txn = ape.networks.ethereum.create_transaction(sender=self.address, **fields)
        signed = self._account.sign_transaction(txn)
        if signed is None or not getattr(signed, "signature", None):
            raise WalletError(f"ape account {self.address} declined to sign the transaction")
        return bytes(signed.serialize_transaction())

    def sign_typed_data(self, typed_data: dict[str, Any]) -> bytes:
        sig = self._account.sign_message(encode_typed_data(full_message=typed_data))
        if sig is None:
            raise WalletError(f"ape account {self.address} declined to sign the message")
        return canonical_signature(int.from_bytes(sig.r, "big"), int.from_bytes(sig.s, "big"),
                                   int(sig.v))

    def sign_digest(self, digest: bytes) -> bytes:
        try:
            sig = self._account.sign_raw_msghash(digest)
        except Exception as e:
            raise WalletError(
                f"ape account {self.address} cannot sign a raw digest ({type(e).__name__}); "
                "use typed data (votes and permits already do)"
            ) from None
        if sig is None:
            raise WalletError(f"ape account {self.address} declined to sign the digest")
        return canonical_signature(int.from_bytes(sig.r, "big"), int.from_bytes(sig.s, "big"),
                                   int(sig.v))

    def __repr__(self) -> str:
        return f"ApeWallet({self.address})"

    __str__ = __repr__

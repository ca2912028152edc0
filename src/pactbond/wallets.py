"""Wallets that sign pactbond transactions and votes: a raw key or an encrypted keystore.

Secrets stay inside the wallet object: its repr shows only the address, errors never carry the
key or the password, and nothing here logs.
"""

from __future__ import annotations

import getpass
import json
import os
import stat
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount

from pactbond import eip712
from pactbond.errors import WalletError


class Wallet(Protocol):
    """What the client needs from a wallet."""

    @property
    def address(self) -> str: ...

    def sign_transaction(self, tx: dict[str, Any]) -> bytes: ...

    def sign_digest(self, digest: bytes) -> bytes: ...


class KeyWallet:
    """A wallet holding a private key in memory."""

    def __init__(self, account: LocalAccount) -> None:
        self._account = account

    @classmethod
    def from_key(cls, key: str | bytes) -> KeyWallet:
        try:
            return cls(Account.from_key(key))
        except Exception:
            raise WalletError("not a valid private key (expected 32 bytes of hex)") from None

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
        try:
            key = Account.decrypt(doc, password)
        except ValueError:
            raise WalletError(f"wrong password for keystore {p}") from None
        except Exception as e:
            raise WalletError(f"keystore {p} is malformed: {type(e).__name__}") from None
        return cls(Account.from_key(key))

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_transaction(self, tx: dict[str, Any]) -> bytes:
        return bytes(self._account.sign_transaction(tx).raw_transaction)

    def sign_digest(self, digest: bytes) -> bytes:
        return eip712.sign_digest(bytes(self._account.key), digest)

    def __repr__(self) -> str:
        return f"KeyWallet({self.address})"


def write_keystore(path: str | Path, key: bytes, password: str) -> Path:
    """Encrypt `key` into a keystore file with mode 0600."""
    p = Path(path)
    doc = Account.encrypt(key, password)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    return p

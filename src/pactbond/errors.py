"""Typed errors. One root (PactbondError); leaves also subclass the matching builtin.

Contract reverts carry stable reason strings ("module: what is wrong"); `error_for_reason` maps
each to the class of error the client raises for it, so a check made before sending and the
revert it anticipates surface as the same type. An unknown reason surfaces as ContractError
with the raw reason.
"""

from __future__ import annotations


class PactbondError(Exception):
    """Root of every pactbond error."""


class InvalidInputError(PactbondError, ValueError):
    """Input refused before anything is sent (a malformed address, amount, term...)."""


class InvalidSignatureError(InvalidInputError):
    """A vote signature that the contract would refuse."""


class ConnectionMismatchError(PactbondError, RuntimeError):
    """The node is not the chain, or the code is not the contracts, the manifest names."""


class WalletError(PactbondError, RuntimeError):
    """A wallet cannot be opened or cannot sign (wrong password, unreadable keystore...)."""


class ContractError(PactbondError, RuntimeError):
    """A call the contracts refuse. `reason` is the contract's revert string."""

    def __init__(self, reason: str, hint: str = "") -> None:
        self.reason = reason
        self.hint = hint
        super().__init__(f"{reason}" + (f" — {hint}" if hint else ""))


class NotAuthorizedError(ContractError, PermissionError):
    """The sender may not make this call."""


class WrongStateError(ContractError):
    """The job (or stake, or committee) is not in a state that allows this call."""


class TimingError(ContractError):
    """Too early or too late: a window is still open or already closed."""


class InsufficientFundsError(ContractError):
    """Not enough stake, credit, unreserved stake, allowance or value."""


class CommitteeChangedError(ContractError):
    """A committee version differs from the one the caller expected."""


class CommitteeUnavailableError(ContractError):
    """The committee cannot back the job (quorum, overlap, parties listed, stake bound)."""


class ExposureCapError(ContractError):
    """Accepting would put the agent's open value under the pact above its cap."""


class PausedError(ContractError):
    """Open, accept and creation are paused by the guardian."""


class VoteRejectedError(ContractError):
    """A vote that does not count (signature, member, round, deadline, duplicate)."""


class TermsError(ContractError, ValueError):
    """Incoherent pact or committee terms; the reason names the term."""


class TokenError(ContractError):
    """An asset transfer failed or the token misbehaves (fee on transfer, false return)."""


class UnknownObjectError(ContractError, LookupError):
    """No such job, pact or committee."""


class ContractInputError(ContractError, ValueError):
    """A revert caused by a malformed argument (zero value, zero address...)."""


_BY_REASON: dict[str, type[ContractError]] = {
    "escrow: paused": PausedError,
    "escrow: committee changed": CommitteeChangedError,
    "escrow: exposure cap": ExposureCapError,
    "escrow: unknown job": UnknownObjectError,
    "escrow: wrong pact terms": TermsError,
    "escrow: pact not approved": CommitteeUnavailableError,
    "escrow: value above committee stake": CommitteeUnavailableError,
    "escrow: committee quorum unavailable": CommitteeUnavailableError,
    "escrow: appeal quorum unavailable": CommitteeUnavailableError,
    "escrow: appeal threshold low": CommitteeUnavailableError,
    "escrow: committees overlap": CommitteeUnavailableError,
    "escrow: party is evaluator": CommitteeUnavailableError,
    "escrow: member stake below bond": CommitteeUnavailableError,
    "escrow: member stake reserved": CommitteeUnavailableError,
    "escrow: agent stake below bond": InsufficientFundsError,
    "escrow: nothing to withdraw": InsufficientFundsError,
    "escrow: wrong ETH amount": InsufficientFundsError,
    "escrow: score changed": WrongStateError,
    "escrow: token transfer failed": TokenError,
    "escrow: fee-on-transfer token": TokenError,
    "escrow: ETH transfer failed": TokenError,
    "escrow: ETH sent to a token pact": ContractInputError,
    "stake: exceeds free stake": InsufficientFundsError,
    "stake: exceeds unreserved stake": InsufficientFundsError,
    "stake: nothing pending": InsufficientFundsError,
    "stake: cooldown not over": TimingError,
    "vote: member stake below bond": VoteRejectedError,
}

_BY_PREFIX: list[tuple[str, type[ContractError]]] = [
    ("pact: ", TermsError),
    ("committee: not admin", NotAuthorizedError),
    ("committee: not listed", NotAuthorizedError),
    ("committee: ", TermsError),
    ("admin: not ", NotAuthorizedError),
    ("admin: ", TermsError),
    ("vote: ", VoteRejectedError),
    ("escrow: not agent", NotAuthorizedError),
    ("escrow: not a party", NotAuthorizedError),
    ("escrow: buyer is agent", ContractInputError),
    ("escrow: zero ", ContractInputError),
    ("escrow: empty deliverable", ContractInputError),
    ("escrow: permit needs a token", ContractInputError),
    ("escrow: value too large", ContractInputError),
    ("stake: zero ", ContractInputError),
    ("stake: amount too large", ContractInputError),
    ("escrow: not ", WrongStateError),
    ("escrow: no verdict", WrongStateError),
    ("escrow: pact has no challenges", WrongStateError),
    ("escrow: round 0 open", TimingError),
    ("escrow: appeal open", TimingError),
    ("escrow: ", TimingError),  # the remaining escrow reasons are windows and deadlines
]


def error_for_reason(reason: str, hint: str = "") -> ContractError:
    """The typed error for a contract revert reason (ContractError for an unknown one)."""
    cls = _BY_REASON.get(reason)
    if cls is None:
        cls = next((c for prefix, c in _BY_PREFIX if reason.startswith(prefix)), ContractError)
    return cls(reason, hint)

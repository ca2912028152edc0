"""Typed errors. One root (PactbondError); leaves also subclass the matching builtin.

Contract reverts carry stable reason strings ("module: what is wrong"); `error_for_reason` maps
each to the class of error the client raises for it, so a check made before sending and the
revert it anticipates surface as the same type, with the same reason and a hint saying what to
do. An unknown reason surfaces as ContractError with the raw reason.
"""

from __future__ import annotations


class PactbondError(Exception):
    """Root of every pactbond error."""


class InvalidInputError(PactbondError, ValueError):
    """Input refused before anything is sent (a malformed address, amount, term...)."""


class ConnectionMismatchError(PactbondError, RuntimeError):
    """The node is not the chain, or the code is not the contracts, the manifest names."""


class WalletError(PactbondError, RuntimeError):
    """A wallet cannot be opened or cannot sign (wrong password, unreadable keystore...)."""


class NodeError(PactbondError, RuntimeError):
    """The node refused or lost a transaction for a reason that is not a contract revert."""


class TxPendingError(NodeError):
    """A transaction was sent but not mined in time: it may still be. Wait for `tx_hash` (or
    replace its `nonce`); sending the call again would make a second transaction."""

    def __init__(self, message: str, tx_hash: bytes, nonce: int) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash
        self.nonce = nonce


class ContractError(PactbondError, RuntimeError):
    """A call the contracts refuse. `reason` is the contract's revert string, `hint` what to do."""

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
    """Not enough stake, credit, unreserved stake, balance or value."""


class CommitteeChangedError(ContractError):
    """A committee version differs from the one the caller expected."""


class CommitteeUnavailableError(ContractError):
    """The committee cannot back the job (quorum, overlap, parties listed, stake bound)."""


class ExposureCapError(ContractError):
    """Accepting would put the agent's open value under the pact above its cap."""


class PausedError(ContractError):
    """Open, accept and creation are paused by the guardian."""


class VoteRejectedError(ContractError):
    """A vote that does not count (member, round, deadline, duplicate, signature)."""


class InvalidSignatureError(VoteRejectedError, InvalidInputError):
    """A vote signature that the contract would refuse ("vote: bad signature")."""


class TermsError(ContractError, ValueError):
    """Incoherent pact or committee terms; the reason names the term."""


class TokenError(ContractError):
    """An asset transfer failed (allowance, balance) or the token misbehaves (fee on transfer,
    false return)."""


class UnknownObjectError(ContractError, LookupError):
    """No such job, pact or committee."""


class ContractInputError(ContractError, InvalidInputError):
    """A revert caused by a malformed argument (zero value, zero address, buyer = agent...)."""


def _reasons(cls: type[ContractError], *reasons: str) -> dict[str, type[ContractError]]:
    return dict.fromkeys(reasons, cls)


_BY_REASON: dict[str, type[ContractError]] = {
    **_reasons(PausedError, "escrow: paused"),
    **_reasons(CommitteeChangedError, "escrow: committee changed"),
    **_reasons(ExposureCapError, "escrow: exposure cap"),
    **_reasons(UnknownObjectError, "escrow: unknown job", "escrow: unknown pact",
               "committee: unknown version"),
    **_reasons(TermsError, "escrow: wrong pact terms"),
    **_reasons(
        CommitteeUnavailableError,
        "escrow: pact not approved", "escrow: value above committee stake",
        "escrow: committee quorum unavailable", "escrow: appeal quorum unavailable",
        "escrow: appeal threshold low", "escrow: committees overlap",
        "escrow: party is evaluator", "escrow: member stake below bond",
        "escrow: member stake reserved",
    ),
    **_reasons(
        InsufficientFundsError,
        "escrow: agent stake below bond", "escrow: nothing to withdraw",
        "escrow: wrong ETH amount", "stake: exceeds free stake",
        "stake: exceeds unreserved stake", "stake: nothing pending", "insufficient funds",
    ),
    **_reasons(TokenError, "escrow: token transfer failed", "escrow: fee-on-transfer token",
               "escrow: ETH transfer failed", "token: permit unsupported"),
    **_reasons(
        ContractInputError,
        "escrow: ETH sent to a token pact", "escrow: buyer is agent", "escrow: zero value",
        "escrow: zero agent", "escrow: zero recipient", "escrow: empty deliverable",
        "escrow: permit needs a token", "escrow: value too large",
        "escrow: version id too large", "stake: zero amount", "stake: zero recipient",
        "stake: amount too large",
    ),
    **_reasons(
        NotAuthorizedError,
        "escrow: not agent", "escrow: not a party", "escrow: call the escrow, not the facet",
        "committee: not admin", "committee: not listed", "admin: not owner",
        "admin: not guardian", "admin: not pending owner",
    ),
    **_reasons(
        WrongStateError,
        "escrow: not open", "escrow: not accepted", "escrow: not challenged",
        "escrow: not expirable", "escrow: no verdict", "escrow: no verdict to challenge",
        "escrow: pact has no challenges", "escrow: score changed",
        "committee: already accepted", "committee: already revoked",
        "admin: escrow already set",
    ),
    **_reasons(
        TimingError,
        "escrow: accept window closed", "escrow: accept window open",
        "escrow: work deadline passed", "escrow: work window open",
        "escrow: evaluation window open", "escrow: challenge window closed",
        "escrow: challenge window open", "escrow: round 0 open", "escrow: appeal open",
        "stake: cooldown not over",
    ),
    **_reasons(InvalidSignatureError, "vote: bad signature"),
}

_BY_PREFIX: list[tuple[str, type[ContractError]]] = [
    ("pact: ", TermsError),
    ("committee: ", TermsError),
    ("admin: ", TermsError),
    ("vote: ", VoteRejectedError),
]

# what to do about each refusal (used when the caller gives no more specific hint)
_HINTS: dict[str, str] = {
    "escrow: paused": "the guardian paused open, accept and creation; wait for the unpause",
    "escrow: committee changed": "a committee rotated: re-read the current versions and retry",
    "escrow: exposure cap": "the agent's open value under this pact would exceed its cap: "
    "finish open jobs first or use a smaller value",
    "escrow: pact not approved": "both committee admins must approve_pact before jobs open",
    "escrow: value above committee stake": "lower the value: the committee's reserved stake "
    "must cover value + fee + slash",
    "escrow: member stake below bond": "a member lacks its evaluator bond outside pending "
    "withdrawal: it must stake more",
    "escrow: member stake reserved": "a member's unreserved stake is below the penalty: wait "
    "for open jobs to end or ask it to stake more",
    "escrow: committee quorum unavailable": "fewer active members than the threshold",
    "escrow: appeal quorum unavailable": "the appeal committee lacks its threshold of active "
    "members",
    "escrow: agent stake below bond": "the agent must stake more free stake to cover the bond",
    "escrow: nothing to withdraw": "no credit in this asset",
    "escrow: wrong ETH amount": "send exactly value + fee (or the challenge bond) in ETH",
    "escrow: token transfer failed": "approve the escrow for the amount (or use a permit) and "
    "hold the balance",
    "escrow: buyer is agent": "the buyer and the agent must be different addresses",
    "escrow: not agent": "only the job's agent may do this",
    "escrow: not a party": "only the buyer or the agent may challenge",
    "escrow: score changed": "the round-0 score differs from the one expected: re-read it",
    "escrow: accept window open": "only the buyer may cancel before the accept deadline",
    "escrow: accept window closed": "the accept deadline passed: the job can only be cancelled",
    "escrow: work deadline passed": "the work deadline passed: the job can only expire",
    "escrow: work window open": "wait until after the work deadline",
    "escrow: evaluation window open": "wait until after the evaluation deadline",
    "escrow: challenge window open": "wait until after the challenge deadline",
    "escrow: challenge window closed": "the challenge deadline passed: finalize instead",
    "escrow: round 0 open": "challenge only after round 0 closes",
    "escrow: appeal open": "wait for the appeal deadline or every appeal member's vote",
    "stake: exceeds free stake": "locked bonds stay until their jobs end",
    "stake: exceeds unreserved stake": "reserved stake stays until the jobs reserving it end",
    "stake: nothing pending": "call request_unstake first",
    "stake: cooldown not over": "wait until the unlock time",
    "committee: not admin": "only the committee's admin may do this",
    "committee: not listed": "the sender is not listed in that committee version",
    "admin: not owner": "only the deployment owner may do this",
    "admin: not guardian": "only the guardian or the owner may pause",
    "vote: bad signature": "the signature is not the member's under the contract's rules",
    "vote: member not reserved": "round-0 votes count only from members reserved at open",
    "vote: not an appeal member": "round-1 votes count only from accepted appeal members",
    "vote: key revoked": "the member revoked its key: its votes no longer count",
    "vote: duplicate vote": "each member votes once per round",
    "vote: deadline passed": "the vote's deadline or the round's last posting time passed",
    "vote: round closed": "round 0 already closed",
    "insufficient funds": "the sender's balance does not cover value + gas",
    "escrow: unknown job": "no job with that id on this deployment",
    "escrow: wrong pact terms": "pass the pact's terms exactly as created (Pactbond.pact)",
    "escrow: appeal threshold low": "the appeal committee's threshold must be at least the "
    "committee's",
    "escrow: committees overlap": "the committee and the appeal committee must list disjoint "
    "members",
    "escrow: party is evaluator": "the buyer and the agent may not be listed in either committee",
    "escrow: fee-on-transfer token": "the token delivered less than sent: it is not supported",
    "escrow: ETH transfer failed": "the recipient refused ETH: withdraw to another address",
    "escrow: ETH sent to a token pact": "a token pact takes no ETH",
    "escrow: zero value": "the job value must be positive",
    "escrow: zero agent": "name the agent's address",
    "escrow: zero recipient": "name a non-zero recipient",
    "escrow: empty deliverable": "submit the hash of the deliverable's bytes",
    "escrow: permit needs a token": "an ETH pact takes open_job",
    "escrow: value too large": "value + fee must stay below 2**128",
    "escrow: version id too large": "committee version ids above 2**24 cannot be bound",
    "escrow: call the escrow, not the facet": "call the escrow's address",
    "escrow: not open": "the job is no longer OPEN",
    "escrow: not accepted": "the job must be ACCEPTED (by its agent) first",
    "escrow: not challenged": "only a CHALLENGED job resolves",
    "escrow: not expirable": "only ACCEPTED or SUBMITTED jobs expire",
    "escrow: no verdict": "the job has no round-0 verdict yet: post votes first",
    "escrow: no verdict to challenge": "a challenge needs a recorded verdict (state VERDICT)",
    "escrow: pact has no challenges": "this pact has a zero challenge window",
    "stake: zero amount": "the amount must be positive",
    "stake: zero recipient": "name a non-zero recipient",
    "stake: amount too large": "stakes stay below 2**128",
    "committee: already accepted": "nothing to do: the version is already accepted",
    "committee: already revoked": "nothing to do: the key is already revoked",
    "admin: not pending owner": "only the address named by transfer_ownership may accept",
    "admin: asset has no code": "the asset must be a deployed ERC-20",
    "vote: no votes": "pass at least one signed vote",
    "vote: job not in evaluation": "round-0 votes count only while the job is SUBMITTED or "
    "has a verdict",
    "vote: job not in appeal": "round-1 votes count only while the job is CHALLENGED",
    "vote: member stake below bond": "the appeal member must hold the version's bond outside "
    "pending withdrawal",
    "vote: score above 10000": "scores are 0..10000 basis points",
    "vote: votes differ from the signed batch": "a call carries every vote of each signed "
    "batch, in the batch's order",
    "vote: signature without votes": "every batch signature needs its member's votes in the call",
    "vote: job fields missing": "pass one JobFields per run of a job's adjacent items",
    "escrow: stale job fields": "the job moved since it was read: read it again "
    "(Pactbond.job) and retry",
    "escrow: evidence vote not counted": "the evidence must be a counted round-0 vote of the job",
    "escrow: evidence vote unsigned": "the evidence vote's signature does not verify",
    "committee: too many versions accepted": "a key accepts at most 256 versions: serve under "
    "a new key",
    "vote: bad round": "round is 0 (verdict) or 1 (appeal)",
    "vote: member did not sign batch": "every item's member needs its batch signature",
    "vote: job of another pact": "a batch call covers the jobs of one pact",
    "vote: batch settles too many jobs": "one settle_batch call may settle at most 32 jobs "
    "(zero challenge window, every reserved member's vote): split the batch",
    "token: permit unsupported": "approve the escrow instead, then open_job",
}

_PREFIX_HINTS = {
    "pact: ": "fix the term the reason names (docs/protocol.md lists the limits)",
    "committee: ": "fix the committee terms the reason names",
    "admin: ": "see the deployment's admin rules (docs/protocol.md)",
}


def error_for_reason(reason: str, hint: str = "") -> ContractError:
    """The typed error for a contract revert reason (ContractError for an unknown one)."""
    cls = _BY_REASON.get(reason)
    if cls is None:
        cls = next((c for prefix, c in _BY_PREFIX if reason.startswith(prefix)), ContractError)
    if not hint:
        hint = _HINTS.get(reason) or next(
            (h for prefix, h in _PREFIX_HINTS.items() if reason.startswith(prefix)), ""
        )
    return cls(reason, hint)

# pragma version 0.4.3
"""
@title pactbond shared types
@license Apache-2.0
@notice Structs shared by PactRegistry and PactEscrow. The ABI encoding of PactTerms is what a
        pact's hash commits to, so both contracts must use this one definition.
"""

MAX_MEMBERS: constant(uint256) = 16
MAX_SIG_LEN: constant(uint256) = 1040  # 16 x 65 bytes: a Safe's 16-of-N signature fits
MAX_PROOF: constant(uint256) = 10  # Merkle depth: batches of up to 1,024 votes per member


struct PactTerms:
    asset: address  # empty address: ETH
    committee_id: uint256
    appeal_committee_id: uint256
    spec_hash: bytes32
    fail_below_bps: uint256
    pass_at_bps: uint256
    bond_bps: uint256
    bond_cap: uint256
    slash_bps: uint256
    slash_buyer_bps: uint256
    slash_insurance_bps: uint256
    slash_burn_bps: uint256
    insurance: address
    shadow: bool
    evaluator_fee: uint256
    challenge_bond: uint256
    appeal_fee: uint256
    min_appeal_delta_bps: uint256
    min_expansion_value: uint256
    accept_window: uint256
    work_window: uint256
    eval_window: uint256
    challenge_window: uint256
    appeal_window: uint256
    silence_release: bool  # on evaluator silence: False refunds the buyer, True releases to the agent
    cap_initial: uint256
    cap_step: uint256
    cap_max: uint256


struct Roster:
    committee_id: uint256
    threshold: uint256
    bond: uint256  # evaluator stake a member must hold for its vote to count
    penalty: uint256  # what a member answers with per job
    members: DynArray[address, MAX_MEMBERS]  # listed members, by index
    accepted: uint256  # bitmap by index: accepted this version
    active: uint256  # bitmap by index: accepted this version and key not revoked, now


struct JobFields:
    # A job's fields that change only in serial transitions; the escrow stores their hash
    # (PactEscrow.job_word) and every job call passes them (ADR 011). The packing:
    head: uint256  # buyer 160 | state 8 | challenger is agent 8 | pact id 32 | version 24 | appeal version 24
    tail: uint256  # agent 160 | reserved member bitmap 16 | deadline 40 | round-0 close 40
    money: uint256  # value 128 | evaluator fee 128
    deliverable: bytes32
    r0: uint256  # round-0 vote lanes, once a challenge moved them out of the clear bits


struct Evidence:
    # One counted round-0 vote, re-proved where a settlement has no vote in its own call, so
    # that Feedback carries a member-signed evidence hash (ADR 011). `batch`: the signature is
    # over a VoteBatch whose root `proof` leads to from this vote's struct hash.
    member: address
    score_bps: uint256
    evidence_hash: bytes32
    deadline: uint256
    batch: bool
    proof: DynArray[bytes32, MAX_PROOF]
    signature: Bytes[MAX_SIG_LEN]


struct SignedVote:
    member: address
    score_bps: uint256
    evidence_hash: bytes32
    deadline: uint256
    signature: Bytes[MAX_SIG_LEN]


struct BatchItem:
    job_id: uint256
    member: address
    score_bps: uint256
    evidence_hash: bytes32


struct BatchSignature:
    member: address
    votes_root: bytes32
    deadline: uint256
    signature: Bytes[MAX_SIG_LEN]

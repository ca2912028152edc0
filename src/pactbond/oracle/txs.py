"""The transaction manager: one signer, its nonces, and every transaction it signs.

Rules, after Chainlink's transaction manager:
- a transaction is persisted (raw bytes, nonce, fees) before it is broadcast, and a signed
  transaction is always broadcast: its nonce is never given to another payload, so a crash at
  any point can neither reuse a nonce nor leave a gap;
- nonces come from max(the node's count of mined transactions, the highest nonce stored + 1);
- a transaction not mined after `bump_after_blocks` is replaced with the same nonce and fees
  raised by `bump_percent`, up to `max_fee_cap_wei` (an alert at the cap); one the node forgot
  is re-broadcast (or bumped, once due); one whose nonce something else consumed (in a final
  block) is superseded and its intent redone;
- a mined transaction is final only `confirmations` blocks deep with its block still canonical;
  a reorg sends it back to the mempool.

Decisions take the head block as an argument; nothing here reads the clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3RPCError

from pactbond.calls import Call
from pactbond.oracle.metrics import Metrics
from pactbond.oracle.store import Intent, Store, Tx
from pactbond.wallets import Wallet

log = logging.getLogger("pactbond.oracle.txs")

# node replies to a re-broadcast of something it already has or already mined
_KNOWN = ("already known", "known transaction", "nonce too low", "already imported",
          "replacement transaction underpriced", "transaction already exists")


@dataclass(frozen=True)
class TxPolicy:
    confirmations: int = 2
    max_in_flight: int = 16
    bump_after_blocks: int = 3
    bump_percent: int = 25
    max_fee_cap_wei: int = 500 * 10**9
    min_balance_wei: int = 10**16
    # geth's and reth's --rpc.txfeecap (1 ETH by default): a transaction whose gas x max fee
    # passes it is refused at every broadcast, and its nonce would block all later ones
    tx_fee_cap_wei: int = 10**18


class TxManager:
    """Sends the calls the service intends, one nonce each, and follows them to finality."""

    def __init__(self, w3: Web3, wallet: Wallet, chain_id: int, store: Store, metrics: Metrics,
                 policy: TxPolicy, kill: Callable[[str], None] = lambda _: None) -> None:
        self.w3 = w3
        self.wallet = wallet
        self.me = to_checksum_address(wallet.address)
        self.chain_id = chain_id
        self.store = store
        self.metrics = metrics
        self.policy = policy
        self.kill = kill
        self.low_balance = False
        self._balance_alerted = False
        self._capped: set[int] = set()

    # -- sending ---------------------------------------------------------------------------
    def room(self) -> int:
        """How many more transactions may be in flight."""
        return max(0, self.policy.max_in_flight - len(self.store.live_txs()))

    def fee_cap(self, gas: int) -> int:
        """The highest max fee a transaction of `gas` may carry: the configured cap, and the
        node's total-fee cap spread over its gas."""
        cap = self.policy.max_fee_cap_wei
        if self.policy.tx_fee_cap_wei:
            cap = min(cap, self.policy.tx_fee_cap_wei // max(gas, 1))
        return cap

    def fees(self, gas: int) -> tuple[int, int]:
        """(max fee, priority fee) for a transaction of `gas`: 2 x base fee + tip, never above
        fee_cap(gas)."""
        block = self.w3.eth.get_block("latest")
        base = int(block.get("baseFeePerGas") or 0)
        tip = int(self.w3.eth.max_priority_fee) if base else int(self.w3.eth.gas_price)
        cap = self.fee_cap(gas)
        if 2 * base + tip > cap:
            self.alert("fee_cap", f"base fee {base} wei: fees held at the cap {cap} wei")
        return min(2 * base + tip, cap), min(tip, cap)

    def next_nonce(self) -> int:
        mined = int(self.w3.eth.get_transaction_count(self.me, "latest"))
        stored = self.store.max_nonce()
        return max(mined, stored + 1 if stored is not None else 0)

    def send(self, intent: Intent, call: Call, gas: int) -> Tx | None:
        """Sign `call` with a new nonce, persist it, then broadcast it. Returns None (and
        raises an alert) when the signer cannot pay for it: the intent waits."""
        max_fee, tip = self.fees(gas)
        balance = int(self.w3.eth.get_balance(self.me))
        self.metrics.balance.set(balance)
        short = balance < gas * max_fee
        # one alert per episode, not one per tick (the loop retries every poll interval);
        # min_balance_wei warns before the signer runs dry (it was configured but unused)
        if not short and balance >= self.policy.min_balance_wei:
            self._balance_alerted = False
        elif not self._balance_alerted:
            self._balance_alerted = True
            why = (f"cannot pay gas {gas} x {max_fee} wei: waiting for a top-up" if short
                   else f"below {self.policy.min_balance_wei} wei: top up soon")
            self.alert("balance", f"signer balance {balance} wei {why}")
        if short:
            self.low_balance = True
            return None
        self.low_balance = False
        nonce = self.next_nonce()
        tx = self._sign(call.to, call.data, nonce, gas, max_fee, tip)
        stored = self.store.save_tx(intent.id, nonce, tx[0], tx[1], max_fee, tip)
        log.info("tx signed", extra={"fields": {"intent": intent.kind, "job": intent.job_id,
                                                "nonce": nonce, "tx": "0x" + tx[1].hex()}})
        self.kill("tx_persisted")
        self.broadcast(stored, head=None)
        return stored

    def _sign(self, to: str, data: bytes, nonce: int, gas: int, max_fee: int,
              tip: int) -> tuple[bytes, bytes]:
        tx: dict[str, Any] = {"to": to, "data": data, "value": 0, "chainId": self.chain_id,
                              "nonce": nonce, "gas": gas, "maxFeePerGas": max_fee,
                              "maxPriorityFeePerGas": tip, "type": 2}
        raw = self.wallet.sign_transaction(tx)
        return raw, Web3.keccak(raw)

    def broadcast(self, tx: Tx, head: int | None) -> None:
        """Send the stored raw bytes; a node that already has them is fine."""
        try:
            self.w3.eth.send_raw_transaction(tx.raw)
        except Exception as e:
            msg = str(e).lower()
            if not any(k in msg for k in _KNOWN):
                self.metrics.failures.labels("broadcast").inc()
                log.warning("broadcast failed, will retry",
                            extra={"fields": {"nonce": tx.nonce, "error": type(e).__name__}})
                return
        self.kill("broadcast")
        if head is None:
            head = int(self.w3.eth.block_number)
        self.store.update_tx(tx.id, status="sent", sent_block=head)
        self.metrics.submitted.inc()

    # -- following -------------------------------------------------------------------------
    def tick(self, head: int, on_final: Callable[[Intent, bool], None]) -> None:
        """Advance every live transaction by what the node says at block `head`; `on_final`
        gets each intent whose transaction became final, with the receipt's success."""
        live = self.store.live_txs()
        self.metrics.in_flight.set(len(live))
        if not live:
            return
        # a nonce is taken as consumed by someone else only once the consuming block is final:
        # a reorg may still undo it, and an intent redone on a new nonce while the old one
        # comes free again leaves a gap that nothing fills (found by the F13 fault test with a
        # reorg: the redone vote waited behind the gap, bumped forever)
        final_block = max(0, head - self.policy.confirmations)
        try:
            final_count = int(self.w3.eth.get_transaction_count(self.me, final_block))
        except Web3RPCError:  # a pruned node without that block's state: the latest count
            final_count = int(self.w3.eth.get_transaction_count(self.me, "latest"))
        for tx in live:
            if tx.status == "signed":
                # a node slower than the client's timeout may have taken (and mined) it even
                # though its answer never came: a receipt says so, whatever broadcast said
                if not self._mined_attempt(tx):
                    self.broadcast(tx, head)
            elif tx.status == "sent":
                self._follow_sent(tx, head, final_count)
            elif tx.status == "mined":
                self._follow_mined(tx, head, on_final)

    def _receipt(self, tx_hash: bytes) -> Any:
        try:
            return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None

    def _mined_attempt(self, tx: Tx) -> bool:
        """Record the mined attempt of `tx`'s nonce, if any: the live one or one it replaced."""
        attempts = [t for t in self.store.txs_of(tx.intent_id) if t.nonce == tx.nonce]
        for t in reversed(attempts):
            r = self._receipt(t.tx_hash)
            if r is not None:
                self.kill("receipt")
                self.store.record_mined(tx.id, t.id, int(r["blockNumber"]),
                                        bytes(r["blockHash"]), int(r["status"]))
                return True
        return False

    def _follow_sent(self, tx: Tx, head: int, final_count: int) -> None:
        if self._mined_attempt(tx):
            return
        if final_count > tx.nonce:
            # the nonce went to a transaction this service did not sign (or lost track of)
            log.warning("nonce consumed outside the service: redoing the intent",
                        extra={"fields": {"nonce": tx.nonce}})
            self.store.update_tx(tx.id, status="superseded")
            self.store.set_intent(tx.intent_id, "new", "nonce consumed outside")
            self.alert("nonce", f"nonce {tx.nonce} consumed outside the service")
            return
        try:
            known = self.w3.eth.get_transaction(HexBytes(tx.tx_hash)) is not None
        except TransactionNotFound:
            known = False
        due = tx.sent_block is not None and head - tx.sent_block >= self.policy.bump_after_blocks
        # a dropped one is bumped too when due: a node evicts a transaction whose max fee fell
        # below the base fee, and the same bytes are refused for as long as the spike lasts
        # (found by the F12 fault test: it was re-sent forever, never bumped, no cap alert)
        if due and self._bump(tx, head):
            return
        if not known:
            log.info("transaction dropped by the node: re-broadcasting",
                     extra={"fields": {"nonce": tx.nonce}})
            self.broadcast(tx, head)

    def _bump(self, tx: Tx, head: int) -> bool:
        """Replace `tx` with higher fees; False (and an alert, once) when it is at the cap."""
        decoded = self._decode(tx.raw)
        cap = self.fee_cap(decoded["gas"])
        if tx.max_fee >= cap:
            if tx.id not in self._capped:
                self._capped.add(tx.id)
                self.alert("fee_cap", f"nonce {tx.nonce} not mined at the fee cap {cap} wei")
            return False
        pct = 100 + self.policy.bump_percent
        max_fee, _ = self.fees(decoded["gas"])
        max_fee = min(cap, max(tx.max_fee * pct // 100 + 1, max_fee))
        tip = min(max_fee, tx.tip * pct // 100 + 1)
        raw, h = self._sign(decoded["to"], decoded["data"], tx.nonce, decoded["gas"], max_fee,
                            tip)
        new = self.store.save_tx(tx.intent_id, tx.nonce, raw, h, max_fee, tip, replaces=tx.id)
        log.info("gas bumped", extra={"fields": {"nonce": tx.nonce, "max_fee": max_fee}})
        self.broadcast(new, head)
        return True

    @staticmethod
    def _decode(raw: bytes) -> dict[str, Any]:
        from eth_account.typed_transactions.typed_transaction import TypedTransaction

        d = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        return {"to": to_checksum_address(d["to"]), "data": bytes(d["data"]), "gas": d["gas"]}

    def _follow_mined(self, tx: Tx, head: int, on_final: Callable[[Intent, bool], None]) -> None:
        assert tx.mined_block is not None
        try:
            canonical = bytes(self.w3.eth.get_block(tx.mined_block)["hash"]) == tx.mined_hash
        except BlockNotFound:
            canonical = False
        # any other error (node down, timeout) propagates: the tick backs off, and an
        # unreachable node is not mistaken for a reorg
        r = self._receipt(tx.tx_hash) if canonical else None
        if r is None or bytes(r["blockHash"]) != tx.mined_hash:
            log.warning("reorg: transaction back to the mempool",
                        extra={"fields": {"nonce": tx.nonce, "block": tx.mined_block}})
            self.store.update_tx(tx.id, status="sent", sent_block=head, mined_block=None,
                                 mined_hash=None, receipt_status=None)
            self.broadcast(self.store.tx_by_id(tx.id), head)
            return
        if head - tx.mined_block >= self.policy.confirmations:
            self.store.update_tx(tx.id, status="confirmed")
            on_final(self.store.intent(tx.intent_id), tx.receipt_status == 1)

    def alert(self, kind: str, message: str) -> None:
        self.metrics.alerts.labels(kind).inc()
        log.warning("ALERT %s", message, extra={"fields": {"alert": kind}})

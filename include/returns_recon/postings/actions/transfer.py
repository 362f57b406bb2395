"""``transfer_to_sellable`` and ``transfer_to_holding``: Cin7 Core stock transfers between a return point's
holding and sellable locations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import psycopg

from returns_recon import references
from returns_recon.postings.actions.base import PostingAction
from returns_recon.postings.model import (
    Candidate,
    Context,
    Planned,
    Posting,
    ReadBack,
    Sent,
    Superseded,
    posting_key,
)
from returns_recon.settings import ReconSettings

KNOWN_TRANSFERS = (
    "SELECT task_id FROM staging.stg_cin7__stock_transfers WHERE split_part(reference, ' ', 1) = %(item_reference)s"
)


class Transfer(PostingAction):
    """Transfers carry a reference only this executor mints (``references.transfer_reference``: the item's
    reference, then ``<action>#<key>``).
    ``stockTransferList`` does not search ``Reference`` (apib L26299): a transfer never attempted is
    looked up in this run's extracted copy of the whole list; one with an earlier attempt (or a
    replay) in a live read of the whole list, matched on our side, once per executor run."""

    __slots__ = ()  # stateless (PostingAction)

    system = "cin7"
    to_sellable: ClassVar[bool]

    def plan(
        self, conn: psycopg.Connection, candidate: Candidate, settings: ReconSettings, now: datetime
    ) -> Planned | None:
        if candidate.sale_id is None:
            return None
        return self.planned(candidate, now)

    def planned(self, candidate: Candidate, now: datetime) -> Planned:
        source, target = candidate.cin7_holding_location, candidate.cin7_sellable_location
        if not self.to_sellable:
            source, target = target, source
        key = posting_key(self.name, candidate.return_id, candidate.item_id, str(target))
        reference = f"{self.name}#{key[:12]}"
        payload = {
            "FromLocation": source,
            "ToLocation": target,
            "Status": "COMPLETED",
            "CompletionDate": now.strftime("%Y-%m-%dT%H:%M:%S"),
            "CostDistributionType": "Cost",
            "Reference": references.transfer_reference(candidate.return_id, str(candidate.item_id), reference),
            "SkipOrder": True,
            "Lines": [{"SKU": candidate.sku, "TransferQuantity": candidate.quantity}],
        }
        return Planned(
            posting_key=key,
            action=self.name,
            system=self.system,
            exception_key=candidate.exception_key,
            return_id=candidate.return_id,
            item_id=candidate.item_id,
            reference=reference,
            payload=payload,
        )

    def read_back(self, ctx: Context, posting: Posting) -> ReadBack:
        reference = posting.payload["Reference"]
        if not ctx.live:
            task_id = ctx.view.transfer(reference)
            if task_id is not None or ctx.view.transfers_extracted():
                return ReadBack(target_ref=task_id)
        return ReadBack(target_ref=ctx.view.live_transfers().get(reference))

    def prepare(self, ctx: Context, posting: Posting, found: ReadBack) -> dict[str, Any]:
        """Re-read the transfers (live, once per executor run, after the plan): one referencing this item that
        the reconciliation has not seen (a person's, made since the plan) means the move may be done."""
        reference = posting.payload["Reference"]
        item_reference = references.item_reference_of_transfer(reference)
        known = {task_id for (task_id,) in ctx.conn.execute(KNOWN_TRANSFERS, {"item_reference": item_reference})}
        by_hand = self.transfer_by_hand(ctx.view.live_transfers(), reference, known)
        if by_hand is not None:
            other, task_id = by_hand
            raise Superseded(f"transfer {task_id} ({other}) was made by hand since the plan")
        return posting.payload

    @staticmethod
    def transfer_by_hand(transfers: Mapping[str, str], reference: str, known: set[str]) -> tuple[str, str] | None:
        """(reference, TaskID) of a transfer of the same item that is not ours and not known to the reconciliation."""
        item_reference = references.item_reference_of_transfer(reference)
        for other, task_id in transfers.items():
            if (
                references.item_reference_of_transfer(other) == item_reference
                and other != reference
                and task_id not in known
            ):
                return other, task_id
        return None

    def send(self, ctx: Context, posting: Posting, body: Any) -> Any:
        return ctx.clients.cin7.send("POST", "stockTransfer", json_body=body, label="stockTransfer")

    def sent(self, response: Any) -> Sent:
        if not isinstance(response, dict):
            return Sent(target_ref=None)
        return Sent(target_ref=response.get("TaskID"), target_number=response.get("Number"))


class TransferToSellable(Transfer):
    """Holding → sellable: an inspected unit not released yet."""

    __slots__ = ()  # stateless (PostingAction)

    name = "transfer_to_sellable"
    fixes = ("inspected_not_released",)
    to_sellable = True


class TransferToHolding(Transfer):
    """Sellable → holding: a unit restocked before its inspection, or a rejected one in sellable stock."""

    __slots__ = ()  # stateless (PostingAction)

    name = "transfer_to_holding"
    fixes = ("premature_restock", "rejected_item_in_sellable_stock")
    to_sellable = False

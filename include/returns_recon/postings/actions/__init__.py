"""The posting actions, one class each, by the name the outbox keeps (``recon.postings.action``)."""

from __future__ import annotations

from returns_recon.postings.actions.authorise import AuthoriseCreditNote
from returns_recon.postings.actions.base import PostingAction
from returns_recon.postings.actions.credit_note import CreateCreditNote
from returns_recon.postings.actions.sitoo import SitooReturnRecord, SitooStoreStock
from returns_recon.postings.actions.transfer import TransferToHolding, TransferToSellable

# missing_restock has no action: Cin7 Core takes restock lines only on a credit note being created or
# still DRAFT (apib L24689); the credit note we create carries them, anything else is for a person.
REGISTRY: dict[str, PostingAction] = {
    action.name: action
    for action in (
        CreateCreditNote(),
        AuthoriseCreditNote(),
        TransferToSellable(),
        TransferToHolding(),
        SitooStoreStock(),
        SitooReturnRecord(),
    )
}
# exception type -> the action that fixes it
FIXED_BY: dict[str, PostingAction] = {kind: action for action in REGISTRY.values() for kind in action.fixes}

__all__ = ["FIXED_BY", "REGISTRY", "PostingAction"]

"""The references the pipeline writes on the documents it creates, built and read in Python here only (the posting
actions use these functions; none spells the format). The reconciliation's SQL reads the same formats through the
SQL functions of migration 0019 (``staging.credit_note_memo``, ``staging.return_of_memo``,
``staging.item_reference``, ...), which answer what these answer (tests/integration/test_single_definitions.py).

    a credit note's memo                           reveni:<return>
    a Sitoo warehouse transaction's externalid     reveni:<return>:<item>
    a stock transfer's reference                   reveni:<return>:<item> <suffix>  (the item reference, a space,
                                                                                    then what tells the transfer)
"""

from __future__ import annotations

PREFIX = "reveni:"


def credit_note_memo(return_id: str) -> str:
    """Our credit note's memo (``staging.credit_note_memo``)."""
    return f"{PREFIX}{return_id}"


def return_of_memo(memo: str | None) -> str | None:
    """The return of a credit note's memo; None for a memo that is not ours, a note made by hand
    (``staging.return_of_memo``)."""
    return memo[len(PREFIX) :] if memo is not None and memo.startswith(PREFIX) else None


def item_reference(return_id: str, item_id: str) -> str:
    """The reference of a return item's stock movement: a Sitoo transaction's externalid, the start of a stock
    transfer's reference (``staging.item_reference``)."""
    return f"{PREFIX}{return_id}:{item_id}"


def transfer_reference(return_id: str, item_id: str, suffix: str) -> str:
    """A stock transfer's reference: the item reference, a space, then what tells this transfer."""
    return f"{item_reference(return_id, item_id)} {suffix}"


def item_reference_of_transfer(reference: str) -> str:
    """The item reference a transfer's reference starts with (SQL: ``split_part(reference, ' ', 1)``, the
    expression migration 0005 indexes)."""
    return reference.split(" ")[0]

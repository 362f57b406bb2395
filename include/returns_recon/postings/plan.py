"""The planner: open auto-fixable exceptions become postings in the outbox, each under a
deterministic idempotency key, before anything is sent. Each posting is built by its action
(``postings/actions/``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from returns_recon.postings.actions import FIXED_BY
from returns_recon.postings.actions.credit_note import UNATTRIBUTED_SALES
from returns_recon.postings.model import Candidate, Planned, stored_json
from returns_recon.settings import ReconSettings

# exception type -> (action, system)
ACTIONS = {kind: (action.name, action.system) for kind, action in FIXED_BY.items()}
BLOCKING = ("sale_not_found", "unmapped_location", "unknown_sku_cin7", "unknown_sku_sitoo", "invalid_record")

CANDIDATES = f"""
WITH {UNATTRIBUTED_SALES}
SELECT e.exception_key, e.exception_type, e.return_id, e.item_id, i.sku, i.quantity, r.currency,
       r.order_external_id, r.return_point_id, m.cin7_holding_location, m.cin7_sellable_location,
       m.sitoo_warehouse_id, i.validated_at,
       (SELECT sum(f.amount) FROM staging.stg_reveni__refunds f WHERE f.return_id = e.return_id AND f.status = 'paid')
           AS refunded,
       s.sale_id, s.sale_type, s.location AS sale_location
FROM recon.exceptions e
JOIN staging.stg_reveni__returns r ON r.return_id = e.return_id
LEFT JOIN staging.stg_reveni__return_items i ON i.item_id = e.item_id
LEFT JOIN staging.dim_location_map m ON m.return_point_id = r.return_point_id
-- the sale by the configured field, not an exchange order: both functions take constants, which the planner folds
-- (into the match field's column, whose index it uses, and into the LIKE pattern of every exchange order)
LEFT JOIN LATERAL (
    SELECT sale_id, sale_type, location FROM staging.stg_cin7__sales x
    WHERE staging.sale_match_value(x, {{match_field}}) = r.order_external_id
      AND coalesce(x.external_id, '') NOT LIKE staging.exchange_reference('%%')
    ORDER BY sale_id LIMIT 1
) s ON true
WHERE recon.is_open(e.state) AND e.exception_type = ANY(%(types)s)
  -- the events DAG plans for the returns it reconciled; the batch runs for every return (NULL)
  AND (%(scope)s::text[] IS NULL OR e.return_id = ANY(%(scope)s::text[]))
  AND NOT EXISTS (SELECT 1 FROM recon.exceptions b
                  WHERE b.return_id = e.return_id AND recon.is_open(b.state)
                    AND b.exception_type = ANY(%(blocking)s))
  -- no credit note for the returns of a sale (by the shop's order number) with an open unattributed note: neither
  -- created nor (an approved DRAFT of ours) authorised
  AND (e.exception_type NOT IN ('refund_without_credit_note', 'credit_note_awaiting_approval')
       OR coalesce(r.order_external_id, '') NOT IN (SELECT order_ref FROM unattributed_sales))
ORDER BY e.first_seen_at, e.exception_key
"""

# Credit notes of ours (or the authorisation of our DRAFT) still waiting in the outbox (planned, or held for the
# go-live check) for a return whose sale is now blocked: set aside as skipped, re-planned by a later run once nothing
# blocks them.
# An ambiguous or sending one is left to the executor, whose next attempt reads back first.
SET_ASIDE = f"""
WITH {UNATTRIBUTED_SALES}
UPDATE recon.postings p
SET status = 'skipped', last_run_id = %(run_id)s, updated_at = now(),
    last_error = 'blocked: open ' || (SELECT string_agg(DISTINCT b.exception_key, ', ') FROM unattributed_sales b
                                      WHERE b.order_ref = coalesce(r.order_external_id, ''))
                 || ' on the sale; a credit note now could credit the customer twice'
FROM staging.stg_reveni__returns r
WHERE r.return_id = p.return_id AND p.action IN ('create_credit_note', 'authorise_credit_note')
  AND p.status IN ('planned', 'held')
  AND coalesce(r.order_external_id, '') IN (SELECT order_ref FROM unattributed_sales)
RETURNING p.posting_key, p.last_error
"""

SAVE = """
INSERT INTO recon.postings AS t (posting_key, action, system, exception_key, return_id, item_id, reference, payload,
                                 amount, status, planned_run_id, last_run_id)
VALUES (%(posting_key)s, %(action)s, %(system)s, %(exception_key)s, %(return_id)s, %(item_id)s, %(reference)s,
        %(payload)s, %(amount)s, 'planned', %(run_id)s, %(run_id)s)
ON CONFLICT (posting_key) DO UPDATE SET
  status = CASE WHEN t.status IN ('dry_run', 'skipped', 'superseded') THEN 'planned' ELSE t.status END,
  last_run_id = EXCLUDED.last_run_id, updated_at = now()
RETURNING (xmax = 0)
"""
LOG_PLANNED = """INSERT INTO recon.posting_log (posting_key, run_id, step, request)
VALUES (%(posting_key)s, %(run_id)s, 'planned', %(payload)s)"""
LOG_SET_ASIDE = """INSERT INTO recon.posting_log (posting_key, run_id, step, outcome, response)
VALUES (%(posting_key)s, %(run_id)s, 'outcome', 'skipped', %(response)s)"""


def plan(
    conn: psycopg.Connection, run_id: str, settings: ReconSettings, scope: Sequence[str] | None = None
) -> list[Planned]:
    """Write the postings that open auto-fixable exceptions call for (of the returns of ``scope`` only, when
    given); return the new or re-planned ones."""
    query = sql.SQL(CANDIDATES).format(match_field=sql.Literal(settings.sale_match_field))
    params = {"types": list(ACTIONS), "blocking": list(BLOCKING), "scope": None if scope is None else list(scope)}
    with conn.cursor(row_factory=class_row(Candidate)) as cur:
        candidates = cur.execute(query, params).fetchall()
    planned = []
    for candidate in candidates:
        posting = FIXED_BY[candidate.exception_type].plan(conn, candidate, settings, datetime.now(UTC))
        if posting is not None:
            planned.append(posting)
    with conn.transaction(), conn.cursor() as cur:
        for p in planned:
            saved = {**asdict(p), "payload": stored_json(p.payload), "run_id": run_id}
            inserted = cur.execute(SAVE, saved).fetchone()
            if inserted and inserted[0]:
                cur.execute(LOG_PLANNED, saved)
        for key, reason in cur.execute(SET_ASIDE, {"run_id": run_id}).fetchall():
            cur.execute(
                LOG_SET_ASIDE, {"posting_key": key, "run_id": run_id, "response": stored_json({"reason": reason})}
            )
    return planned

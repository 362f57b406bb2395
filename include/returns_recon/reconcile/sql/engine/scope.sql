-- The returns a targeted run (the events DAG) reconciles: the ones asked for, and every other return of the same
-- order, hence of the same sale, whose refunds decide with theirs which return a credit note made by hand belongs
-- to (models/int_notes_by_hand.sql): a return reconciled without the others of its sale could be attributed a note
-- that matches several of them, or raise an unattributed_credit_note the batch run would not.
-- parameters: scope
SELECT coalesce(array_agg(DISTINCT x.return_id ORDER BY x.return_id), ARRAY[]::text[]) AS scope
FROM (
    SELECT unnest(%(scope)s::text[]) AS return_id
    UNION
    SELECT o.return_id
    FROM staging.stg_reveni__returns AS r
    INNER JOIN staging.stg_reveni__returns AS o ON r.order_external_id = o.order_external_id
    WHERE r.return_id = any(%(scope)s::text[])
) AS x

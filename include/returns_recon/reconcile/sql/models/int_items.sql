-- Every item of the window with its return's attributes, its stock legs and the state of each of its legs.
-- The legs' states are stated here and only here: detection (detect/found.sql) and publication
-- (publish/fct_return_reconciliation.sql) read them. The rules are operating-model.md §2 and §3: a warehouse
-- item's stock is checked in Cin7 Core (blocked by an unmapped return point or a SKU unknown to Cin7 Core), a store
-- item's in Sitoo (blocked by an unmapped return point or a SKU unknown to Sitoo); SLAs run from the inspection.
-- parameters: release_sla, restock_sla
WITH items AS (
    SELECT
        i.item_id, i.return_id, i.sku, i.quantity, i.exchange_sku, i.validation_status, i.restock, i.validated_at,
        pc.sku IS NULL AS unknown_cin7, ps.sku IS NULL AS unknown_sitoo,
        r.kind, r.map_ok, r.sale_id, r.received_at, r.holding, r.sellable, r.sitoo_warehouse_id,
        r.exchange_sale_id, r.exchange_order_status,
        coalesce(rs.to_holding, 0) AS restocked_to_holding,
        coalesce(rs.to_sellable, 0) AS restocked_to_sellable,
        coalesce(rs.elsewhere, 0) AS restocked_elsewhere,
        coalesce(x.into_sellable, 0) AS transfers_into_sellable,
        coalesce(x.out_of_sellable, 0) AS transfers_out_of_sellable,
        x.first_release_at, coalesce(x.sitoo_transactions, 0) AS sitoo_transactions, x.sitoo_at_mapped,
        x.sitoo_elsewhere, x.sitoo_first_at
    FROM staging.stg_reveni__return_items AS i
    INNER JOIN int_returns AS r USING (return_id)
    LEFT JOIN int_item_restocks AS rs ON i.return_id = rs.return_id AND i.sku = rs.sku
    LEFT JOIN int_item_references AS x ON i.return_id = x.return_id AND i.item_id = x.item_id
    LEFT JOIN (SELECT DISTINCT sku FROM staging.stg_cin7__products) AS pc ON i.sku = pc.sku
    LEFT JOIN (SELECT DISTINCT sku FROM staging.stg_sitoo__products) AS ps ON i.sku = ps.sku
),

measured AS (
    SELECT
        items.*,
        -- units restocked by the return's credit notes, wherever they went
        items.restocked_to_holding + items.restocked_to_sellable + items.restocked_elsewhere AS restocked,
        -- units in sellable stock: restocked straight there, plus transfers in, less transfers out
        items.restocked_to_sellable
        + (items.transfers_into_sellable - items.transfers_out_of_sellable) * items.quantity AS in_sellable,
        -- an accepted item Reveni sends back to stock
        (items.validation_status = 'accepted' AND items.restock) AS to_stock,
        items.validated_at + %(release_sla)s AS release_due_at,
        items.validated_at + %(restock_sla)s AS sitoo_stock_due_at
    FROM items
)

SELECT
    m.*,
    CASE
        WHEN (m.kind IS DISTINCT FROM 'warehouse') THEN 'not_applicable'
        WHEN NOT m.map_ok OR m.unknown_cin7 THEN 'blocked'
        WHEN m.received_at IS NULL THEN 'not_due'
        WHEN m.restocked > 0 THEN 'ok'
        ELSE 'missing'
    END AS restock_leg,
    CASE
        WHEN (m.kind IS DISTINCT FROM 'warehouse') THEN 'not_applicable'
        WHEN NOT m.map_ok OR m.unknown_cin7 THEN 'blocked'
        WHEN m.to_stock
            THEN
                CASE
                    WHEN m.in_sellable > 0 THEN 'released'
                    WHEN m.release_due_at < now() THEN 'overdue'
                    ELSE 'pending'
                END
        ELSE 'not_due'
    END AS release_leg,
    CASE
        WHEN (m.kind IS DISTINCT FROM 'store') THEN 'not_applicable'
        WHEN NOT m.map_ok OR m.unknown_sitoo THEN 'blocked'
        WHEN m.sitoo_at_mapped THEN 'ok'
        WHEN m.sitoo_elsewhere THEN 'wrong_location'
        WHEN m.to_stock THEN CASE WHEN m.sitoo_stock_due_at < now() THEN 'missing' ELSE 'pending' END
        ELSE 'not_due'
    END AS sitoo_stock_leg,
    CASE
        WHEN m.exchange_sku IS NULL THEN 'not_applicable'
        WHEN m.exchange_sale_id IS NULL THEN 'missing'
        ELSE lower(coalesce(m.exchange_order_status, 'unknown'))
    END AS exchange_leg
FROM measured AS m

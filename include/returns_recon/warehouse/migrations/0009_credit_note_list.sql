-- Cin7 Core serves the restock state of a credit note on its row of GET /saleCreditNoteList
-- (RestockStatus, dearinventory.apib L20649), not on the credit notes of GET /sale: the restock
-- state gets a table of its own, filled from that list, and leaves the tables the sale detail fills.

CREATE TABLE staging.stg_cin7__credit_note_list (
    sale_id             text NOT NULL,
    credit_note_number  text NOT NULL,  -- '' when the row names none
    credit_note_status  text,
    restock_status      text,           -- NULL when the row does not carry it (see the go-live check)
    sale_type           text,
    updated_at          timestamptz NOT NULL,
    _run_id             text NOT NULL,
    PRIMARY KEY (sale_id, credit_note_number)
);
COMMENT ON TABLE staging.stg_cin7__credit_note_list IS
    'One row per Cin7 Core saleCreditNoteList row: the credit note''s status and its restock state';

ALTER TABLE staging.stg_cin7__credit_notes DROP COLUMN restock_status;
ALTER TABLE staging.stg_cin7__restocks DROP COLUMN restock_status;
-- a restock line without RestockLocation brings the stock back to its Location (apib L30638)
ALTER TABLE staging.stg_cin7__restocks ALTER COLUMN restock_location DROP NOT NULL;

-- the number of the document a posting created (credit note CR-…, transfer TR-…), beside its id
ALTER TABLE recon.postings ADD COLUMN target_number text;

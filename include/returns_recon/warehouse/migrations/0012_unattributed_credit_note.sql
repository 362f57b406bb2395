-- operating-model.md §3 (amended): an AUTHORISED credit note made by hand on the sale of a refunded return that
-- no return can be attributed (§1). One row per refunded return of the sale (key unattributed_credit_note:<return>);
-- while it is open the planner creates no credit note for the sale's returns (crediting again could credit twice).
INSERT INTO recon.dim_exception_types (exception_type, owner, severity, auto_fix, level, description) VALUES
 ('unattributed_credit_note', 'finance', 'high', NULL, 'return',
  'An AUTHORISED credit note made by hand on the sale of a refunded return can be attributed to no return '
  '(another total, or several returns match it): the customer may be credited twice. Our credit note for '
  'the sale''s returns is not created while this is open.')
ON CONFLICT (exception_type) DO NOTHING;

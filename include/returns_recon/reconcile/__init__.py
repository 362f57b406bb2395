"""The reconciliation engine: set-based SQL over staging, the exception queue, and the
published finance tables (operating-model.md §2–§3, §5)."""

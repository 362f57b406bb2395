"""Corrective postings: fix what is safe to fix, exactly once (operating-model.md §4)."""

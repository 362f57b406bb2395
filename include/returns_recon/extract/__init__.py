"""Extraction of the three systems into ``raw`` and ``staging``: pagers, per-entity runs, watermarks."""

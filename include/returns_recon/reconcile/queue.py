"""The exception queue: one row per stable key; re-runs update, never duplicate (``sql/queue/``)."""

from __future__ import annotations

from returns_recon.reconcile.sql import load

MERGE = load("queue/merge").text
AUTO_RESOLVE = load("queue/auto_resolve").text
SET_STATE = load("queue/set_state").text

"""The states of an exception in the queue (recon.exceptions.state, migration 0004's CHECK), and which of them
count as open: still to be acted on, in the mails, the run's summary and the published tables, and fixable by a
posting. Python reads them here; SQL asks ``recon.is_open(state)`` (migration 0020), which answers the same
(tests/integration/test_single_definitions.py)."""

from __future__ import annotations

OPEN_STATES = ("open", "acknowledged")  # acknowledged: a person is on it, still open
CLOSED_STATES = ("resolved", "auto_resolved")  # by a person; by the pipeline (no longer seen)
EXCEPTION_STATES = OPEN_STATES + CLOSED_STATES

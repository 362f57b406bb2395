"""The shape every posting action has: plan, read back, prepare, send, and read the answer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, ClassVar

import psycopg

from returns_recon.postings.model import Candidate, Context, Planned, Posting, ReadBack, Sent
from returns_recon.settings import ReconSettings


class PostingAction(ABC):
    """One kind of corrective posting, from the open exception it fixes to the document it creates.

    Stateless: an action keeps nothing between calls. What a run learns about the target systems lives in
    the ``Context`` passed in (its ``SaleView``); what a read-back found is handed to ``prepare``. Every action
    declares empty ``__slots__``, so an instance cannot hold an attribute at all."""

    __slots__ = ()

    name: ClassVar[str]  # recon.postings.action
    system: ClassVar[str]  # recon.postings.system: cin7 or sitoo
    fixes: ClassVar[tuple[str, ...]]  # the exception types it fixes

    @abstractmethod
    def plan(
        self, conn: psycopg.Connection, candidate: Candidate, settings: ReconSettings, now: datetime
    ) -> Planned | None:
        """The posting for this open exception (None when it cannot be built from the warehouse)."""

    @abstractmethod
    def read_back(self, ctx: Context, posting: Posting) -> ReadBack:
        """Our document in the target system, looked up by our reference."""

    def blocker(self, ctx: Context, posting: Posting) -> str | None:
        """An exception opened since the plan that blocks this posting, else None."""
        return None

    @abstractmethod
    def prepare(self, ctx: Context, posting: Posting, found: ReadBack) -> Any:
        """The body to send, after re-reading the target. Raises ``Superseded`` when a person's document
        appeared since the plan, ``Refused`` when the target would refuse it."""

    @abstractmethod
    def send(self, ctx: Context, posting: Posting, body: Any) -> Any:
        """One write; its answer."""

    @abstractmethod
    def sent(self, response: Any) -> Sent:
        """The document the answer names."""

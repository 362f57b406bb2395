"""The go-live check: one or two read-only calls per assumption the vendors do not document.

Each check asks the real account (through the same connections the pipeline uses) a question
whose answer the pipeline is configured for, and records what it saw in ``recon.golive_checks``.
A check *passes* when the account answers what the pipeline relies on (``expected``): for an
informational check, the vendor's documented behaviour. A blocking check that fails holds every
posting to its system until a later go-live run passes or the merchant overrides it
(``RECON_GOLIVE_OVERRIDE``); a system never checked is held too. docs/golive.md lists the checks
(its Assumptions table), the procedure and what to do about each refutation.

Plain typed functions, no Airflow: the CLI (``python -m returns_recon.cli golive-check``) and the
DAG ``returns_recon_golive_check`` build the clients through the hooks and call ``run_golive_check``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg

from returns_recon.apis.errors import ApiError, AuthError
from returns_recon.errors import NotRetryable
from returns_recon.extract.run import Clients
from returns_recon.settings import ReconSettings

log = logging.getLogger(__name__)

System = Literal["reveni", "cin7", "sitoo"]
Outcome = Literal["confirmed", "refuted", "unverified", "error"]
SYSTEMS: tuple[System, ...] = ("reveni", "cin7", "sitoo")
POSTING_SYSTEMS: tuple[System, ...] = ("cin7", "sitoo")  # Reveni receives no postings
DEFAULT_CIN7_PACE = 50  # Cin7CoreHook.default_calls_per_minute (extra.calls_per_minute)
# Sitoo: "Sales, Refund and StockTaking are read only" (schemas/warehousetransaction-write.yaml L13); their
# codes are inferred from the documentation's examples (paths/sites/_siteid_/warehousetransactions.yaml L22, L104)
SITOO_TRANSACTION_TYPES = {
    10: "Move In (+qty)",
    20: "Move Out (-qty)",
    30: "Sales, read only",
    40: "Refund, read only",
    50: "StockTaking, read only",
}
SITOO_READ_ONLY_TYPES = {30, 40, 50}
RATE_LIMIT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after")
PROBE_PARAMETER = "recon_golive_probe"  # the undeclared query parameter the Sitoo check sends
# checks whose request lies outside the vendor's documented contract on purpose (an undeclared parameter)
OFF_CONTRACT = ("undeclared_query_parameters",)


class GoliveCheckFailed(NotRetryable):
    """A blocking check failed: its system's postings stay held (a retry asks the same question)."""


@dataclass(frozen=True)
class Observation:
    outcome: Outcome
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckContext:
    """What a check may use: the API clients, the warehouse (read only) and the settings."""

    clients: Clients
    conn: psycopg.Connection | None
    settings: ReconSettings
    cin7_calls_per_minute: int = DEFAULT_CIN7_PACE


@dataclass(frozen=True)
class Check:
    id: str
    system: System
    assumption: str  # one sentence
    source: str  # vendor file and line, or "vendor silent: …"
    setting: str  # the RECON_ variable or connection extra that governs it
    blocking: bool  # a failure holds the system's postings
    expected: Literal["confirmed", "refuted"]  # what the pipeline relies on
    verifies: str  # how the check asks (docs/golive.md)
    run: Callable[[CheckContext], Observation] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Result:
    check: Check
    outcome: Outcome
    evidence: dict[str, Any]

    @property
    def passed(self) -> bool | None:
        """True when the account answered what the pipeline relies on; None when unverified."""
        if self.outcome == "unverified":
            return None
        return self.outcome == self.check.expected

    @property
    def verdict(self) -> str:
        if self.outcome == "error":
            return "ERROR"
        if self.passed is None:
            return "UNVERIFIED"
        if self.passed:
            return "PASS"
        return "FAIL" if self.check.blocking else "DIFFERS"

    @property
    def holds(self) -> bool:
        return self.check.blocking and self.passed is False


@dataclass
class Report:
    run_id: str
    checked_at: datetime
    results: list[Result]
    held: dict[str, str]  # posting system -> why its postings are held (after any override)
    overridden: tuple[str, ...] = ()

    @property
    def blocking_failures(self) -> list[Result]:
        return [r for r in self.results if r.holds]

    @property
    def ok(self) -> bool:
        return not self.blocking_failures

    def render(self) -> str:
        lines = [f"go-live check {self.run_id} at {self.checked_at:%Y-%m-%d %H:%M:%S} UTC", ""]
        width = max((len(r.check.id) for r in self.results), default=10)
        for r in self.results:
            tag = r.verdict + (" (blocking)" if r.holds else "")
            lines.append(
                f"{r.check.system:<6} {r.check.id:<{width}}  expected {r.check.expected:<9}  "
                f"observed {r.outcome:<10}  {tag:<21} {summarise(r.evidence)}"
            )
        lines.append("")
        for system in SYSTEMS:
            failed = [r.check.id for r in self.results if r.check.system == system and r.holds]
            if system not in POSTING_SYSTEMS:
                state = f"extraction at risk: {', '.join(failed)} failed" if failed else "no postings to hold"
            elif system in self.held:
                state = f"postings held ({self.held[system]})"
            elif system in self.overridden and failed:
                state = f"postings released by RECON_GOLIVE_OVERRIDE despite {', '.join(failed)}"
            else:
                state = "postings released"
            lines.append(f"{system:<6} {state}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "held": self.held,
            "checks": {r.check.id: {"outcome": r.outcome, "verdict": r.verdict} for r in self.results},
        }


def summarise(evidence: Mapping[str, Any], limit: int = 160) -> str:
    text = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in evidence.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the checks ---------------------------------------------------------------------------------------


def _api_error(err: ApiError) -> dict[str, Any]:
    return {"status": err.status, "answer": str(err)[:200]}


def _credit_note_list_restock_status(ctx: CheckContext) -> Observation:
    body = ctx.clients.cin7.get("saleCreditNoteList", {"Page": 1, "Limit": 1}, label="golive")
    rows = body.get("SaleList") or []
    if not rows:
        return Observation("unverified", {"credit_notes": body.get("Total", 0), "why": "the account has none yet"})
    row = rows[0]
    evidence = {"credit_notes": body.get("Total"), "CreditNoteStatus": row.get("CreditNoteStatus")}
    if row.get("RestockStatus") is None:
        return Observation("refuted", {**evidence, "RestockStatus": "absent" if "RestockStatus" not in row else None})
    return Observation("confirmed", {**evidence, "RestockStatus": row["RestockStatus"]})


def _transfer_search_reference(ctx: CheckContext) -> Observation:
    body = ctx.clients.cin7.get("stockTransferList", {"Page": 1, "Limit": 100}, label="golive")
    transfer = next((t for t in body.get("StockTransferList") or [] if (t.get("Reference") or "").strip()), None)
    if transfer is None:
        return Observation("unverified", {"transfers": body.get("Total", 0), "why": "no transfer with a Reference"})
    reference = transfer["Reference"].strip()
    found = ctx.clients.cin7.get("stockTransferList", {"Page": 1, "Limit": 100, "Search": reference}, label="golive")
    hits = {t.get("TaskID") for t in found.get("StockTransferList") or []}
    evidence = {"reference": reference[:80], "transfer": transfer.get("Number"), "search_hits": found.get("Total", 0)}
    return Observation("confirmed" if transfer.get("TaskID") in hits else "refuted", evidence)


def _cin7_rate_limit(ctx: CheckContext) -> Observation:
    client = ctx.clients.cin7
    client.get("ref/location", {"Page": 1, "Limit": 1}, label="golive")
    headers = {h: client.last_headers.get(h) for h in RATE_LIMIT_HEADERS if client.last_headers.get(h) is not None}
    evidence: dict[str, Any] = {"configured_calls_per_minute": ctx.cin7_calls_per_minute, **headers}
    limit = headers.get("x-ratelimit-limit")
    if limit is None or not str(limit).strip().isdigit():
        evidence["why"] = "the answer carries no rate-limit header (none is documented)"
        return Observation("unverified", evidence)
    return Observation("confirmed" if ctx.cin7_calls_per_minute <= int(limit) else "refuted", evidence)


NO_LIST_ANSWERS = (404, 405)  # what an account without the paged list answers GET returns with


def _reveni_list_endpoint(ctx: CheckContext) -> Observation:
    """Whether the account has the paged ``GET returns`` (not public, reveni_api.md §1), against the connection's
    extra ``list_endpoint``. Refuted only when the connection relies on a list the account does not serve: every
    batch run's Reveni extraction would fail. The other disagreement (false, where the account has one) passes: the
    by-id reads work there; the evidence says the list could be switched on as a catch-up path."""
    configured = ctx.clients.reveni_list_endpoint
    evidence: dict[str, Any] = {"configured": configured}
    try:
        body = ctx.clients.reveni.get("returns", {"page_size": 1}, label="golive")
    except AuthError:
        raise
    except ApiError as err:
        has = False if err.status in NO_LIST_ANSWERS else None  # another refusal says neither
        evidence.update(_api_error(err))
    else:
        has = isinstance(body, dict) and isinstance(body.get("results"), list)
        if has:
            evidence.update(count=body.get("count"), paged="next" in body)
        else:  # an answer the extraction cannot page: no usable list
            keys = sorted(body)[:10] if isinstance(body, dict) else type(body).__name__
            evidence.update(answer="no {results: [...]} envelope", keys=keys)
    evidence["has_list_endpoint"] = has
    if configured and not has:
        evidence["use"] = (
            'extra "list_endpoint": false on reveni_default (returns read by id and from webhooks)'
            if has is False
            else 'extra "list_endpoint": false on reveni_default, unless Reveni confirms the list on this account'
        )
        return Observation("refuted", evidence)
    if not configured and has:
        evidence["use"] = 'optional: extra "list_endpoint": true also finds returns whose every event was lost'
    return Observation("confirmed", evidence)


def _latest_return_id(ctx: CheckContext) -> str | None:
    if ctx.conn is None:
        return None
    row = ctx.conn.execute(
        "SELECT return_id FROM staging.stg_reveni__returns ORDER BY updated_at DESC NULLS LAST LIMIT 1"
    ).fetchone()
    return row[0] if row else None


def _reveni_get_return(ctx: CheckContext) -> Observation:
    return_id, origin = _latest_return_id(ctx), "warehouse"
    if return_id is None:
        origin = "list"
        try:
            listed = ctx.clients.reveni.get("returns", {"page_size": 1}, label="golive")
            return_id = next((str(r["id"]) for r in listed.get("results") or [] if r.get("id")), None)
        except AuthError:
            raise
        except ApiError:
            return_id = None
    if return_id is None:
        return Observation("unverified", {"why": "no return known yet (the warehouse and the list have none)"})
    try:
        body = ctx.clients.reveni.get(f"returns/{return_id}", label="golive")
    except AuthError:
        raise
    except ApiError as err:
        return Observation("refuted", {"return_id": return_id, "from": origin, **_api_error(err)})
    same = isinstance(body, dict) and str(body.get("id")) == return_id
    evidence = {"return_id": return_id, "from": origin, "status": body.get("status") if same else None}
    return Observation("confirmed" if same else "refuted", evidence)


SALE_FIELDS = ("CustomerReference", "ExternalID", "OrderNumber")
_STAGED_MATCH = """
SELECT r.order_external_id,
       EXISTS (SELECT 1 FROM staging.stg_cin7__sales s WHERE s.customer_reference = r.order_external_id
                  OR s.external_id = r.order_external_id OR s.order_number = r.order_external_id) AS staged
FROM staging.stg_reveni__returns r
WHERE r.order_external_id <> ''
ORDER BY 2 DESC, r.updated_at DESC, r.return_id
LIMIT 1"""


def _sale_match_field(ctx: CheckContext) -> Observation:
    configured = ctx.settings.sale_match_field
    row = ctx.conn.execute(_STAGED_MATCH).fetchone() if ctx.conn is not None else None
    if row is None:
        return Observation(
            "unverified", {"why": "the warehouse has no Reveni return yet: run a cycle, then check again"}
        )
    order, staged = row
    # Search reads OrderNumber, CustomerReference, … but not ExternalID, which has a filter of its own
    searches = (
        [{"ExternalID": order}, {"Search": order}]
        if configured == "ExternalID"
        else [{"Search": order}, {"ExternalID": order}]
    )
    matched: set[str] = set()
    for params in searches:
        body = ctx.clients.cin7.get("saleList", {"Page": 1, "Limit": 100, **params}, label="golive")
        for sale in body.get("SaleList") or []:
            matched |= {f for f in SALE_FIELDS if str(sale.get(f) or "") == order}
        if matched:
            break
    evidence = {"order": order, "configured": configured, "found_in": sorted(matched)}
    if configured in matched:
        return Observation("confirmed", evidence)
    if matched:
        return Observation("refuted", evidence)
    # not found under any field: a sale missing in Cin7 Core (an exception of its own), not a wrong field
    return Observation("unverified", {**evidence, "staged": staged, "why": "no sale found for that order"})


def _sitoo_includeinactive(ctx: CheckContext) -> Observation:
    sitoo, site = ctx.clients.sitoo_api()
    path = f"sites/{site}/products.json"
    try:
        body = sitoo.get(path, {"includeinactive": "true", "num": 1}, label="golive")
    except AuthError:
        raise
    except ApiError as err:
        return Observation("refuted", _api_error(err))
    if isinstance(body, dict) and isinstance(body.get("totalcount"), int) and isinstance(body.get("items"), list):
        return Observation("confirmed", {"totalcount": body["totalcount"]})
    return Observation("refuted", {"answer": "no {totalcount, items} envelope"})


def _sitoo_undeclared_parameters(ctx: CheckContext) -> Observation:
    sitoo, site = ctx.clients.sitoo_api()
    path = f"sites/{site}/stores.json"
    try:
        sitoo.get(path, {"num": 1, PROBE_PARAMETER: "1"}, label="golive")
    except AuthError:
        raise
    except ApiError as err:
        return Observation("refuted", {"answer": "reject", **_api_error(err)})
    return Observation("confirmed", {"answer": "ignore"})


def _sitoo_restock_transaction_type(ctx: CheckContext) -> Observation:
    wanted = ctx.settings.sitoo_restock_transaction_type
    documented = {str(k): v for k, v in SITOO_TRANSACTION_TYPES.items()}
    if wanted in SITOO_READ_ONLY_TYPES:
        return Observation("refuted", {"configured": wanted, "why": SITOO_TRANSACTION_TYPES[wanted]})
    sitoo, site = ctx.clients.sitoo_api()
    path = f"sites/{site}/warehousetransactions.json"
    body = sitoo.get(path, {"transactiontype": wanted, "num": 100}, label="golive")
    quantities = [
        item.get("decimalquantity")
        for t in body.get("items") or []
        if t.get("transactiontype") == wanted
        for item in t.get("items") or []
    ]
    signs = {"positive": 0, "negative": 0}
    for quantity in quantities:
        try:
            signs["negative" if float(quantity) < 0 else "positive"] += 1
        except (TypeError, ValueError):
            continue
    evidence: dict[str, Any] = {"configured": wanted, "lines_of_that_type": signs}
    if not quantities:
        evidence.update(
            why="no transaction of that type on the account; there is no endpoint listing the types",
            documented=documented,
        )
        return Observation("unverified", evidence)
    return Observation("refuted" if signs["negative"] else "confirmed", evidence)


CHECKS: tuple[Check, ...] = (
    Check(
        "list_endpoint",
        "reveni",
        "Where the connection says the account has a paged list (extra list_endpoint true, the default), "
        "GET returns?page_size= answers one {count, next, previous, results}.",
        "vendor silent: Reveni documents webhooks and GET returns/{id} only (reveni_api.md §1, §3)",
        "connection reveni_default extra.list_endpoint (default true; simulator behaviour reveni.list_endpoint)",
        True,
        "confirmed",
        "GET returns?page_size=1: 404 or 405 (no list) or 200 with results (a list); refuted when list_endpoint is "
        "true without a usable list; the evidence says which setting to use",
        _reveni_list_endpoint,
    ),
    Check(
        "get_return",
        "reveni",
        "GET returns/{id} answers the return.",
        "reveni_api.md §3 (documented)",
        "connection reveni_default (extra.store_id)",
        True,
        "confirmed",
        "GET returns/{id} of the newest return in staging.stg_reveni__returns (or the list's first)",
        _reveni_get_return,
    ),
    Check(
        "credit_note_list_restock_status",
        "cin7",
        "saleCreditNoteList rows carry RestockStatus, where the pipeline reads each note's restock state.",
        "dearinventory.apib L20649/L20683 (in the example rows; not in the field table at L20553)",
        "simulator behaviour cin7.credit_note_list_restock_status",
        True,
        "confirmed",
        "GET saleCreditNoteList?Page=1&Limit=1: the row has RestockStatus (no credit notes: unverified)",
        _credit_note_list_restock_status,
    ),
    Check(
        "sale_match_field",
        "cin7",
        "The Cin7 Core field RECON_SALE_MATCH_FIELD holds the Reveni return's order number.",
        "merchant configuration (dearinventory.apib L20447 Search fields, L20459 ExternalID filter)",
        "RECON_SALE_MATCH_FIELD (default CustomerReference)",
        True,
        "confirmed",
        "GET saleList?Search=<order> (ExternalID: ?ExternalID=<order>) for a return in the warehouse; exact match",
        _sale_match_field,
    ),
    Check(
        "transfer_search_reference",
        "cin7",
        "stockTransferList Search matches a transfer's Reference.",
        "dearinventory.apib L26300: Search reads FromLocation, ToLocation, Status, CustomerReference, Number",
        "simulator behaviour cin7.transfer_search_fields (the pipeline matches Reference on its side)",
        False,
        "refuted",
        "a transfer with a Reference from GET stockTransferList, then GET stockTransferList?Search=<Reference>",
        _transfer_search_reference,
    ),
    Check(
        "rate_limit",
        "cin7",
        "The account allows the configured pace (60 calls per minute per application key).",
        "dearinventory.apib L124 (the 429 message); no rate-limit header is documented",
        "connection cin7_core_default extra.calls_per_minute (default 50)",
        False,
        "confirmed",
        "GET ref/location?Limit=1: X-RateLimit-*/Retry-After headers if any (none: unverified)",
        _cin7_rate_limit,
    ),
    Check(
        "includeinactive",
        "sitoo",
        "products.json accepts includeinactive=true and answers the {totalcount, items} envelope.",
        "sitoo/src/paths/sites/_siteid_/products.yaml L54",
        "none: the Sitoo product extraction always sends it",
        True,
        "confirmed",
        "GET sites/{site}/products.json?includeinactive=true&num=1",
        _sitoo_includeinactive,
    ),
    Check(
        "restock_transaction_type",
        "sitoo",
        "Warehouse transaction type RECON_SITOO_RESTOCK_TRANSACTION_TYPE adds stock and may be posted.",
        "sitoo/src/schemas/warehousetransaction-write.yaml L13 (read-only types); codes from examples only",
        "RECON_SITOO_RESTOCK_TRANSACTION_TYPE (default 10)",
        True,
        "confirmed",
        "GET warehousetransactions.json?transactiontype=<type>: its lines add stock (none on the account: unverified)",
        _sitoo_restock_transaction_type,
    ),
    Check(
        "undeclared_query_parameters",
        "sitoo",
        "A query parameter the endpoint does not declare is ignored, not refused.",
        "vendor silent",
        "simulator behaviour sitoo.undeclared_query_parameters",
        False,
        "confirmed",
        f"GET sites/{{site}}/stores.json?num=1&{PROBE_PARAMETER}=1: 200 (ignore) or 4xx (reject)",
        _sitoo_undeclared_parameters,
    ),
)


# --- running, storing, holding --------------------------------------------------------------------------


def run_checks(ctx: CheckContext, checks: Sequence[Check] = CHECKS) -> list[Result]:
    results = []
    for check in checks:
        try:
            observation = check.run(ctx)
        except Exception as err:  # a check that cannot ask is reported, never fatal to the others
            observation = Observation("error", {"error": f"{type(err).__name__}: {str(err)[:200]}"})
        results.append(Result(check, observation.outcome, observation.evidence))
        log.info("go-live %s.%s: %s (%s)", check.system, check.id, observation.outcome, summarise(observation.evidence))
    return results


def account_of(client: Any) -> str:
    """Which account a client talks to, without a secret: a hash of its base URL and its login (Cin7
    Core's account id header, Sitoo's API id). A go-live pass releases that account only, so switching a
    connection from the sandbox to the live account holds its postings until the check runs again."""
    auth = getattr(client.session, "auth", None)
    login = auth[0] if isinstance(auth, tuple) and auth else ""
    account_id = client.session.headers.get("api-auth-accountid", "")
    return hashlib.sha256(f"{client.base_url}|{account_id}|{login}".encode()).hexdigest()[:16]


def accounts_of(clients: Clients) -> dict[str, str]:
    accounts = {"reveni": account_of(clients.reveni), "cin7": account_of(clients.cin7)}
    if clients.sitoo is not None:  # a merchant without stores has no Sitoo account
        accounts["sitoo"] = account_of(clients.sitoo)
    return accounts


def store(
    conn: psycopg.Connection, run_id: str, checked_at: datetime, results: Sequence[Result], accounts: Mapping[str, str]
) -> None:
    with conn.transaction():
        for r in results:
            c = r.check
            conn.execute(
                """INSERT INTO recon.golive_checks (run_id, checked_at, system, check_id, assumption, source, setting,
                                                  blocking, expected, outcome, passed, evidence, account)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (run_id, check_id) DO UPDATE SET checked_at = excluded.checked_at,
                     outcome = excluded.outcome, passed = excluded.passed, evidence = excluded.evidence""",
                (
                    run_id,
                    checked_at,
                    c.system,
                    c.id,
                    c.assumption,
                    c.source,
                    c.setting,
                    c.blocking,
                    c.expected,
                    r.outcome,
                    r.passed,
                    json.dumps(r.evidence, default=str),
                    accounts[c.system],
                ),
            )


def run_golive_check(
    conn: psycopg.Connection,
    clients: Clients,
    settings: ReconSettings,
    run_id: str,
    *,
    cin7_calls_per_minute: int | None = None,
    checks: Sequence[Check] = CHECKS,
) -> Report:
    """Ask every check, store the rows in ``recon.golive_checks``, and say which systems stay held."""
    checked_at = datetime.now(UTC)
    if clients.sitoo is None:  # a merchant without stores: nothing to ask Sitoo (its postings stay held)
        checks = [check for check in checks if check.system != "sitoo"]
    ctx = CheckContext(clients, conn, settings, cin7_calls_per_minute or DEFAULT_CIN7_PACE)
    results = run_checks(ctx, checks)
    accounts = accounts_of(clients)
    store(conn, run_id, checked_at, results, accounts)
    return Report(run_id, checked_at, results, held_systems(conn, settings, accounts), tuple(settings.golive_override))


def hold_reasons(latest: Mapping[str, tuple[str, Sequence[str]]], override: Sequence[str]) -> dict[str, str]:
    """Which posting systems are held, and why.

    ``latest`` maps a system to (its latest go-live run id, the blocking checks that failed in it); a system
    missing from it has never been checked. ``override`` lists the systems the merchant releases anyway."""
    held: dict[str, str] = {}
    for system in POSTING_SYSTEMS:
        if system in override:
            continue
        if system not in latest:
            held[system] = "no go-live check has run for this account: python -m returns_recon.cli golive-check"
        elif failed := latest[system][1]:
            held[system] = f"go-live check {latest[system][0]} failed: {', '.join(sorted(failed))}"
    return held


def held_systems(
    conn: psycopg.Connection, settings: ReconSettings, accounts: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Posting systems whose latest go-live run failed a blocking check, or that were never checked,
    less those in ``RECON_GOLIVE_OVERRIDE``. With ``accounts`` (``accounts_of(clients)``), only runs that
    asked those accounts count: a pass on the sandbox does not release the live account."""
    accounts = accounts or {}
    rows = conn.execute(
        """WITH latest AS (SELECT DISTINCT ON (system) system, run_id FROM recon.golive_checks
                           WHERE %(accounts)s::jsonb ->> system IS NULL OR account = %(accounts)s::jsonb ->> system
                           ORDER BY system, checked_at DESC, run_id DESC)
           SELECT l.system, l.run_id,
                  coalesce(array_agg(g.check_id) FILTER (WHERE g.blocking AND g.passed IS FALSE), '{}')
           FROM latest l JOIN recon.golive_checks g USING (system, run_id)
           GROUP BY l.system, l.run_id""",
        {"accounts": json.dumps(dict(accounts))},
    ).fetchall()
    return hold_reasons({system: (run_id, failed) for system, run_id, failed in rows}, settings.golive_override)


def cin7_pace(extra: Mapping[str, Any] | None) -> int:
    """The pace the Cin7 Core connection is configured for (``extra.calls_per_minute``, default 50)."""
    value = (extra or {}).get("calls_per_minute")
    return int(value) if value else DEFAULT_CIN7_PACE


def enforce(report: Report) -> None:
    """Fail (no retry) when a blocking check failed, naming the checks and what stays held."""
    if not report.ok:
        failed = ", ".join(f"{r.check.system}.{r.check.id} ({r.outcome})" for r in report.blocking_failures)
        held = "; ".join(f"{s}: {why}" for s, why in report.held.items()) or "none (overridden)"
        raise GoliveCheckFailed(
            f"go-live check {report.run_id}: blocking checks failed: {failed}. Held: {held}. "
            "What to do per check: docs/golive.md"
        )

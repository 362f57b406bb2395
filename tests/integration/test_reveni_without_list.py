"""Reveni without a list endpoint (issue 20, item 3): with the simulator's paged ``GET returns`` switched off and the
connection saying so (extra ``list_endpoint`` false), the batch runs read by id the returns the webhooks named and
the returns not yet final, and reconcile them as the list path does; the go-live check tells the missing endpoint.
And Reveni read leniently: an unknown status is kept and raised as a data-quality warning, a return without the
fields no public source shows is staged and reconciled."""

from __future__ import annotations

import copy
import json
import logging
import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path

import psycopg
import pytest

from returns_recon import steps
from returns_recon.apis.client import RetrySettings
from returns_recon.extract.entities import BY_ID_CURSOR, FINAL_RETURN, get_watermark, reveni_returns_to_read
from returns_recon.extract.run import Clients
from returns_recon.golive import CHECKS, run_golive_check
from returns_recon.notify import digest
from returns_recon.orchestration.hooks import Cin7CoreHook, ReveniHook, SitooHook
from tests.fixtures.pipeline import SETTINGS, cycle
from tests.fixtures.scenarios import answer_key, scenario
from tests.fixtures.simulators import CREDS

pytestmark = pytest.mark.integration

OPEN = "SELECT exception_type, return_id, item_id FROM recon.exceptions WHERE state IN ('open', 'acknowledged')"
LIST_CHECK = [c for c in CHECKS if c.id == "list_endpoint"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scenario(tmp_path_factory.mktemp("no-list"), 2020, returns=120)


def clients_with_extra(simulators, monkeypatch, **reveni_extra) -> Clients:
    """Clients built as ``orchestration.connections.api_clients`` builds them, the Reveni connection's extra
    extended with ``reveni_extra``."""
    env = simulators.env()
    reveni = json.loads(env["AIRFLOW_CONN_REVENI_DEFAULT"])
    reveni["extra"].update(reveni_extra)
    env["AIRFLOW_CONN_REVENI_DEFAULT"] = json.dumps(reveni)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    retry = RetrySettings(initial_wait=0.2, max_wait=3, read_timeout=5)
    hook = ReveniHook(retry=retry)
    return Clients(
        hook.client(),
        Cin7CoreHook(retry=retry).client(),
        SitooHook(retry=retry).client(),
        CREDS.sitoo_site_id,
        reveni_list_endpoint=hook.list_endpoint(),
    )


def events_name(db, return_ids: list[str]) -> None:
    """One return.created event per return in the inbox, as the webhook receiver stores a verified delivery."""
    with db.connect(autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO raw.webhook_inbox (source, event_id, event_type, resource_ids, payload)
               VALUES ('reveni', %s, 'return.created', ARRAY[%s], '{}'::jsonb)""",
            [(uuid.uuid4().hex, return_id) for return_id in return_ids],
        )


def document(path: Path) -> dict:
    return json.loads(path.read_text())


def test_without_a_list_endpoint_the_batch_reads_by_id_what_events_named_and_what_is_not_final(
    simulators, world, warehouse_db, monkeypatch, behaviour, caplog
) -> None:
    simulators.load(world)
    behaviour("reveni", list_endpoint=False)
    clients = clients_with_extra(simulators, monkeypatch, list_endpoint=False)
    assert clients.reveni_list_endpoint is False
    returns = {r["id"]: r for r in document(world)["reveni"]["returns"]}
    expected = answer_key(world)
    invalid = {r for t, r, _ in expected if t == "invalid_record"}
    assert invalid, "the scenario plants an invalid record (quarantined when read by id too)"

    # the probe asks the one read every account has; the list would answer 404
    assert steps.probe_apis(clients) == {"reveni": "ok", "cin7": "ok", "sitoo": "ok"}
    # every return was announced by a webhook: read by id, validated, quarantined and reconciled as listed ones are
    events_name(warehouse_db, list(returns))
    cycle(warehouse_db, clients, world, "no-list-1", post=False)
    with warehouse_db.connect() as conn:
        staged = {r[0] for r in conn.execute("SELECT return_id FROM staging.stg_reveni__returns")}
        found = set(conn.execute(OPEN).fetchall())
        quarantined = {r[0] for r in conn.execute("SELECT natural_key FROM raw.quarantine WHERE entity = 'returns'")}
        published = conn.execute("SELECT count(*) FROM recon.fct_returns").fetchone()[0]
        run = conn.execute(
            "SELECT fetched, api_calls FROM raw.extract_runs WHERE run_id = 'no-list-1' AND entity = 'returns'"
        ).fetchone()
    assert staged == set(returns) - invalid
    assert quarantined == invalid
    assert found == expected, (found - expected, expected - found)
    assert published == len(staged)
    assert clients.reveni.calls["returns"] == 0, "the list was never asked"
    assert run == (len(returns), len(returns))

    # a change the webhooks never told: a return not yet final is read again by the next run, a final one is not
    with warehouse_db.connect() as conn:
        final = {
            r[0] for r in conn.execute(f"SELECT r.return_id FROM staging.stg_reveni__returns AS r WHERE {FINAL_RETURN}")
        }
    open_one = next(r for r in sorted(staged - final) if returns[r]["status"] in ("in_progress", "shipped", "received"))
    done_one = next(r for r in sorted(final) if returns[r]["status"] == "accepted")
    simulators.upsert("reveni.returns", {**returns[open_one], "status": "for_review"})
    simulators.upsert("reveni.returns", {**returns[done_one], "status": "received"})
    before = clients.reveni.calls["return"]
    with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
        steps.extract_reveni(conn, clients, "no-list-2", "hourly", SETTINGS)
        status = dict(conn.execute("SELECT return_id, status FROM staging.stg_reveni__returns").fetchall())
    assert status[open_one] == "for_review"
    assert status[done_one] == "accepted", "a final return is not read again (docs/webhooks.md)"
    # read again: what is not final, and what the events named that the warehouse does not hold (the invalid ones)
    assert clients.reveni.calls["return"] - before == len(staged - final) + len(invalid)

    # bounded per run: the rest is left, logged, and read in turn by the next runs
    with warehouse_db.connect() as conn:
        total = len(reveni_returns_to_read(conn, SETTINGS).ids)
        budget = len(invalid) + 3
        bounded = SETTINGS.model_copy(update={"reveni_reads_by_id_per_run": budget})
        first = reveni_returns_to_read(conn, bounded)
    assert first.new == sorted(invalid)
    assert len(first.in_turn) == 3
    assert len(first.left) == total - budget
    caplog.set_level(logging.INFO, logger="returns_recon.extract.entities")
    before = clients.reveni.calls["return"]
    with psycopg.connect(warehouse_db.url, autocommit=True) as conn:
        steps.extract_reveni(conn, clients, "no-list-3", "hourly", bounded)
        cursor = get_watermark(conn, "reveni", BY_ID_CURSOR)
        second = reveni_returns_to_read(conn, bounded)
    assert clients.reveni.calls["return"] - before == budget
    assert f"{total - budget} left for the next run" in caplog.text
    assert cursor == first.in_turn[-1]
    assert second.new == first.new, "what only an event named stays first"
    assert second.in_turn[0] > cursor, "the next ones, in turn"
    assert not set(second.in_turn) & set(first.in_turn)

    # the go-live check tells the account has no list: as configured here it passes; the default setting is refuted
    # with the setting to use
    with warehouse_db.connect(autocommit=True) as conn:
        fits = run_golive_check(conn, clients, SETTINGS, "no-list-golive", checks=LIST_CHECK)
        wrong = run_golive_check(
            conn, replace(clients, reveni_list_endpoint=True), SETTINGS, "no-list-golive-2", checks=LIST_CHECK
        )
    (ok,) = fits.results
    assert (ok.outcome, ok.verdict) == ("confirmed", "PASS")
    assert ok.evidence["has_list_endpoint"] is False
    assert ok.evidence["configured"] is False
    assert "use" not in ok.evidence
    (refuted,) = wrong.results
    assert (refuted.outcome, refuted.verdict) == ("refuted", "FAIL")
    assert refuted.evidence["status"] == 404
    assert refuted.evidence["has_list_endpoint"] is False
    assert '"list_endpoint": false' in refuted.evidence["use"]
    assert "list_endpoint failed" in wrong.render()


def test_an_account_with_the_list_configured_without_it_passes_and_is_told_it_could_use_it(
    simulators, world, warehouse_db, monkeypatch
) -> None:
    simulators.load(world)
    clients = clients_with_extra(simulators, monkeypatch, list_endpoint="false")  # the URI form's text
    assert clients.reveni_list_endpoint is False
    with warehouse_db.connect(autocommit=True) as conn:
        (result,) = run_golive_check(conn, clients, SETTINGS, "has-list", checks=LIST_CHECK).results
    assert (result.outcome, result.verdict) == ("confirmed", "PASS")
    assert result.evidence["has_list_endpoint"] is True
    assert '"list_endpoint": true' in result.evidence["use"]


def test_an_unknown_status_is_kept_and_warned_and_a_return_without_the_unpublished_fields_is_reconciled(
    simulators, world, clients_for, warehouse_db
) -> None:
    simulators.load(world)
    clients = clients_for()
    cycle(warehouse_db, clients, world, "lenient-1", post=False)
    returns = [r for r in document(world)["reveni"]["returns"] if r["currency"] is not None]
    held = next(r for r in returns if r["status"] == "received")
    simulators.upsert("reveni.returns", {**held, "status": "on_hold"})
    # what R2/R3 show publicly and the order number, nothing more (the simulator stamps updated_at)
    bare = copy.deepcopy(returns[0])
    bare_id = uuid.uuid4().hex
    for key in ("created_at", "return_point", "type", "instant", "refund_method", "received_at", "refunds"):
        bare.pop(key)
    bare["id"] = bare_id
    bare["status"] = "in_progress"
    bare["return_items"] = [
        dict(i, item_id=uuid.uuid4().hex, validation_status="pending") for i in bare["return_items"]
    ]
    simulators.upsert("reveni.returns", bare)

    cycle(warehouse_db, clients, world, "lenient-2", post=False)  # a critical failure would raise here
    with warehouse_db.connect() as conn:
        status = conn.execute(
            "SELECT status FROM staging.stg_reveni__returns WHERE return_id = %s", (held["id"],)
        ).fetchone()
        quarantined = conn.execute(
            "SELECT count(*) FROM raw.quarantine WHERE natural_key = ANY(%s)", ([held["id"], bare_id],)
        ).fetchone()[0]
        warning = conn.execute(
            """SELECT success, severity, unexpected_count, unexpected_sample FROM recon.dq_results
               WHERE run_id = 'lenient-2' AND suite = 'reveni_structure' AND expectation LIKE %s""",
            ("ExpectColumnValuesToBeInSet(column=status,%on reveni_return_statuses",),
        ).fetchone()
        reconciled = conn.execute("SELECT count(*) FROM recon.recon_runs WHERE run_id = 'lenient-2'").fetchone()[0]
        staged = conn.execute(
            """SELECT return_type, is_instant, return_point_id, created_at, updated_at IS NOT NULL
               FROM staging.stg_reveni__returns WHERE return_id = %s""",
            (bare_id,),
        ).fetchone()
        published = conn.execute(
            "SELECT return_status, created_at IS NOT NULL FROM recon.fct_returns WHERE return_id = %s", (bare_id,)
        ).fetchone()
        unmapped = conn.execute(
            "SELECT evidence ->> 'hint' FROM recon.exceptions WHERE exception_key = %s",
            (f"unmapped_location:{bare_id}",),
        ).fetchone()
        data_mail = digest.build(conn, "data", date.today(), None)
    assert status == ("on_hold",)
    assert quarantined == 0
    success, severity, count, sample = warning
    assert (success, severity, count) == (False, "warning", 1)
    assert sample == [{"return_id": held["id"], "status": "on_hold"}]
    assert reconciled == 1, "the run went on to the reconciliation"
    assert staged == (None, None, None, None, True)
    assert published == ("in_progress", True), "dated by its update: in the window, published"
    assert unmapped == ("Reveni shows no return point for this return",)
    # and the data team's mail says so
    assert data_mail is not None
    assert data_mail.unknown_values == [
        {"field": "return status", "value": "on_hold", "return_id": held["id"], "item_id": None}
    ]
    text = digest.render(data_mail, "recon@example.com").get_body(preferencelist=("plain",)).get_content()
    assert f"return status 'on_hold'  return {held['id']}" in text

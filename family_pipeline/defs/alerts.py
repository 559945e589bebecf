"""The owner-alert sensor: failed asset checks of finished runs become one digest per owner.

Its cursor is the update time of the last finished run handled (and the runs handled at that
instant); only finished runs are read, so each digest covers a whole run. The ``dq_alerts`` table
records every digest sent, so even a sensor that lost its cursor never sends one twice.
"""

import datetime
import json
import os

import dagster as dg
from dagster._core.events import DagsterEventType

from family_pipeline.alerts import (
    AlertStore,
    Failure,
    build_digests,
    load_routing,
    send_email,
)
from family_pipeline.catalog import catalog
from family_pipeline.lib.lake import default_data_dir

#: check evaluations read per tick (a tick that finds more continues on the next)
BATCH = 20_000


class AlertingResource(dg.ConfigurableResource):
    """Where alerts go. SMTP from the environment (``FAMILY_PIPELINE_SMTP_*``); without a host,
    digests are only recorded in ``dq_alerts``."""

    smtp_host: str = ""
    smtp_port: int = 25
    sender: str = "family-pipeline@localhost"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    #: SQLAlchemy URL of the database holding ``dq_alerts`` (default: SQLite in the data directory)
    alerts_db_url: str = ""
    #: routing file (mute / reroute); default ``seeds/alert_routing.yaml``
    routing_path: str = ""

    def store(self) -> AlertStore:
        url = self.alerts_db_url or f"sqlite:///{default_data_dir().resolve() / 'alerts.sqlite'}"
        return AlertStore(url)


def _failure(evaluation, code: str) -> Failure:
    spec = catalog().registry(code)
    meta = evaluation.metadata or {}

    def value(name, default):
        v = meta.get(name)
        return v.value if v is not None else default

    counts = value("counts", {})
    sample = value("sample_record_ids", [])
    return Failure(registry=code, registry_name=spec.name_en, check=evaluation.check_name,
                   severity=evaluation.severity.value if evaluation.severity else "ERROR",
                   description=evaluation.description or "", flagged_records=int(value("flagged_records", 0)),
                   counts=json.loads(counts) if isinstance(counts, str) else dict(counts or {}),
                   sample_record_ids=list(sample or []), report=value("report", None))


FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
#: runs handled per tick (a tick that finds more continues on the next)
RUNS_PER_TICK = 50


def _evaluations(instance: dg.DagsterInstance, run_id: str) -> list:
    out, cursor = [], None
    while True:
        conn = instance.get_records_for_run(run_id, cursor=cursor, of_type=DagsterEventType.ASSET_CHECK_EVALUATION,
                                            limit=BATCH)
        out.extend(r.event_log_entry.dagster_event.event_specific_data for r in conn.records)
        if not conn.has_more:
            return out
        cursor = conn.cursor


@dg.sensor(name="dq_owner_alerts", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Turns failed data-quality checks of each finished run into one digest per registry owner.")
def dq_owner_alerts(context: dg.SensorEvaluationContext, alerting: AlertingResource) -> dg.SensorResult:
    state = json.loads(context.cursor) if context.cursor else {"after": 0.0, "runs": []}
    after = datetime.datetime.fromtimestamp(state["after"], tz=datetime.timezone.utc)
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(statuses=FINISHED, updated_after=after - datetime.timedelta(seconds=1)),
        order_by="update_timestamp", ascending=True, limit=RUNS_PER_TICK + len(state["runs"]))
    registries = {s.code for s in catalog().registries}
    routing = load_routing(alerting.routing_path or None)
    store, sent, handled = None, 0, 0
    for record in records:
        stamp = record.update_timestamp.timestamp()
        run_id = record.dagster_run.run_id
        if stamp < state["after"] or (stamp == state["after"] and run_id in state["runs"]):
            continue
        pairs = []
        for evaluation in _evaluations(context.instance, run_id):
            key = evaluation.asset_key
            if evaluation.passed or key.path[0] != "registries" or key.path[-1] not in registries:
                continue
            code = key.path[-1]
            recipient = routing.recipient(code, catalog().registry(code).owner_email)
            if recipient:
                pairs.append((recipient, _failure(evaluation, code)))
        store = store or alerting.store()
        for digest in build_digests(run_id, pairs):
            if store.already_sent(run_id, digest.recipient):
                continue
            channel = "table"
            if alerting.smtp_host:
                send_email(digest, alerting.smtp_host, alerting.smtp_port, alerting.sender, alerting.smtp_username,
                           alerting.smtp_password, alerting.smtp_starttls)
                channel = "email"
            store.record(digest, channel)
            sent += 1
        state = {"after": stamp, "runs": (state["runs"] if stamp == state["after"] else []) + [run_id]}
        handled += 1
        if handled >= RUNS_PER_TICK:
            break
    context.log.info(f"{handled} finished run(s) read, {sent} digest(s) sent")
    return dg.SensorResult(cursor=json.dumps(state))


@dg.definitions
def alerts() -> dg.Definitions:
    return dg.Definitions(
        sensors=[dq_owner_alerts],
        resources={"alerting": AlertingResource(
            smtp_host=dg.EnvVar("FAMILY_PIPELINE_SMTP_HOST").get_value("") or "",
            smtp_port=int(dg.EnvVar("FAMILY_PIPELINE_SMTP_PORT").get_value("25") or 25),
            sender=dg.EnvVar("FAMILY_PIPELINE_SMTP_SENDER").get_value("") or "family-pipeline@localhost",
            smtp_username=dg.EnvVar("FAMILY_PIPELINE_SMTP_USERNAME").get_value("") or "",
            # a secret stays an EnvVar: Dagster resolves it at run time and never shows it
            smtp_password=dg.EnvVar("FAMILY_PIPELINE_SMTP_PASSWORD") if os.environ.get("FAMILY_PIPELINE_SMTP_PASSWORD") else "",
            alerts_db_url=dg.EnvVar("FAMILY_PIPELINE_ALERTS_DB_URL").get_value("") or "",
            routing_path=dg.EnvVar("FAMILY_PIPELINE_ALERT_ROUTING").get_value("") or "",
        )},
    )

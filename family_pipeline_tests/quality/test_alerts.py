"""Owner alerts: a real SMTP server receives one digest per owner, with the registry, the
failed checks and counts, and no personal data; the sensor never sends a digest twice."""

import re
import socket

import dagster as dg
import pandas as pd
import pytest
from aiosmtpd.controller import Controller

from family_pipeline.alerts import AlertStore
from family_pipeline.catalog import catalog
from family_pipeline.defs.alerts import AlertingResource, dq_owner_alerts
from family_pipeline_tests.conftest import copy_country, run_job, run_on_instance


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append({"to": list(envelope.rcpt_tos), "from": envelope.mail_from,
                              "data": envelope.content.decode("utf-8", errors="replace")})
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture(scope="module")
def checked(small_country, tmp_path_factory):
    """The small country ingested and checked by the registries job on its own instance."""
    root = copy_country(small_country, tmp_path_factory.mktemp("checked"))
    home = tmp_path_factory.mktemp("dagster_home")
    result, instance = run_on_instance(root, home, "ingest_registries")
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    return {"root": root, "instance": instance, "run_id": result.run_id, "failed": failed, "home": home}


def _tick(checked, port, tmp_path, cursor=None, routing=None):
    resource = AlertingResource(smtp_host="127.0.0.1", smtp_port=port, sender="dq@family-pipeline.example",
                                alerts_db_url=f"sqlite:///{tmp_path / 'alerts.sqlite'}",
                                routing_path=str(routing or ""))
    context = dg.build_sensor_context(instance=checked["instance"], cursor=cursor, resources={"alerting": resource})
    return dq_owner_alerts(context)


def test_one_digest_per_owner_with_failures_counts_and_no_personal_data(checked, smtp, tmp_path, small_country):
    inbox, port = smtp
    result = _tick(checked, port, tmp_path)
    assert checked["failed"], "the default country has defects, so checks must fail"
    owners = {catalog().registry(e.asset_key.path[-1]).owner_email for e in checked["failed"]}
    recipients = [m["to"][0] for m in inbox.messages]
    assert sorted(recipients) == sorted(owners)  # exactly one digest per owner
    # the digest names the registry, the failed checks and their counts
    failure = checked["failed"][0]
    code = failure.asset_key.path[-1]
    mail = next(m for m in inbox.messages if m["to"][0] == catalog().registry(code).owner_email)
    assert f"Registry {code}" in mail["data"] and failure.check_name in mail["data"]
    assert re.search(r"records flagged: \d+", mail["data"])
    assert checked["run_id"] in mail["data"]
    # no IIN and no name of anyone in the country
    persons = pd.read_parquet(small_country / "truth/persons.parquet", columns=["iin", "last_name", "first_name"])
    everything = "\n".join(m["data"] for m in inbox.messages)
    assert not set(re.findall(r"\d{12}", everything)) & set(persons.iin)
    words = set(re.findall(r"[А-Яа-яЁёӘәҒғҚқҢңӨөҰұҮүҺһІі]{3,}", everything))
    assert not words & (set(persons.last_name) | set(persons.first_name))
    assert checked["run_id"] in result.cursor
    rows = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite'}").rows()
    assert len(rows) == len(owners) and {r["channel"] for r in rows} == {"email"}


def test_a_restart_never_sends_twice(checked, smtp, tmp_path):
    inbox, port = smtp
    first = _tick(checked, port, tmp_path)
    sent = len(inbox.messages)
    again = _tick(checked, port, tmp_path, cursor=first.cursor)  # the next tick: nothing new
    assert len(inbox.messages) == sent and again.cursor == first.cursor
    _tick(checked, port, tmp_path, cursor=None)  # a sensor that lost its cursor
    assert len(inbox.messages) == sent


def test_owners_can_be_muted_or_rerouted_by_configuration(checked, smtp, tmp_path):
    inbox, port = smtp
    codes = sorted({e.asset_key.path[-1] for e in checked["failed"]})
    muted, moved = codes[0], codes[1]
    routing = tmp_path / "routing.yaml"
    routing.write_text(f"mute: [{muted}]\nreroute: {{{moved}: duty-officer@ministry.example.kz}}\n")
    _tick(checked, port, tmp_path, routing=routing)
    bodies = {m["to"][0]: m["data"] for m in inbox.messages}
    assert not any(f"Registry {muted} " in b for b in bodies.values())
    assert f"Registry {moved} " in bodies["duty-officer@ministry.example.kz"]


def test_a_fixed_registry_stops_alerting(checked, smtp, tmp_path):
    """Break a registry whose checks passed: its owner is alerted; fix it: no more alerts."""
    inbox, port = smtp
    state = _tick(checked, port, tmp_path).cursor
    failing = {e.asset_key.path[-1] for e in checked["failed"]}
    spec = next(s for s in catalog().registries if s.code not in failing and s.source.format == "csv"
                and s.source.location == "landing" and s.source.encoding == "utf-8")
    path = checked["root"] / "landing" / spec.code / spec.file_name
    original = path.read_bytes()

    def run_registry():
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DAGSTER_HOME", str(checked["home"]))
            return run_job(checked["root"], "ingest_registries", [dg.AssetKey(["registries", spec.code])])

    try:
        path.write_bytes(original + b"broken;line\n" * 3)
        run_registry()
        before = len(inbox.messages)
        state = _tick(checked, port, tmp_path, cursor=state).cursor
        new = inbox.messages[before:]
        assert [m["to"][0] for m in new] == [spec.owner_email]
        assert f"Registry {spec.code} " in new[0]["data"] and "quarantine" in new[0]["data"]
    finally:
        path.write_bytes(original)
    result = run_registry()
    assert all(e.passed for e in result.get_asset_check_evaluations())
    before = len(inbox.messages)
    _tick(checked, port, tmp_path, cursor=state)
    assert len(inbox.messages) == before

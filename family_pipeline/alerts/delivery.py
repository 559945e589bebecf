"""Delivery: e-mail over SMTP, and the ``dq_alerts`` table (SQLAlchemy: an embedded SQLite file
by default, PostgreSQL in production), which also makes sending idempotent: a digest already
recorded for (run, recipient) is never sent again."""

from __future__ import annotations

import datetime as dt
import smtplib
from email.message import EmailMessage

import sqlalchemy as sa

from family_pipeline.alerts.digest import Digest

__all__ = ["AlertStore", "send_email"]

METADATA = sa.MetaData()
DQ_ALERTS = sa.Table(
    "dq_alerts", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("registries", sa.Text, nullable=False),
    sa.Column("failed_checks", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("run_id", "recipient", name="uq_dq_alerts_run_recipient"),
)


class AlertStore:
    def __init__(self, url: str):
        self.engine = sa.create_engine(url)
        METADATA.create_all(self.engine)

    def already_sent(self, run_id: str, recipient: str) -> bool:
        with self.engine.connect() as con:
            q = sa.select(sa.func.count()).select_from(DQ_ALERTS).where(
                DQ_ALERTS.c.run_id == run_id, DQ_ALERTS.c.recipient == recipient)
            return bool(con.execute(q).scalar())

    def record(self, digest: Digest, channel: str) -> None:
        with self.engine.begin() as con:
            con.execute(DQ_ALERTS.insert().values(
                run_id=digest.run_id, recipient=digest.recipient, registries=",".join(digest.registries),
                failed_checks=len(digest.failures), errors=sum(f.severity == "ERROR" for f in digest.failures),
                subject=digest.subject, body=digest.body(), channel=channel,
                created_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)))

    def rows(self) -> list[dict]:
        with self.engine.connect() as con:
            return [dict(r._mapping) for r in con.execute(sa.select(DQ_ALERTS).order_by(DQ_ALERTS.c.id))]


def send_email(digest: Digest, host: str, port: int, sender: str, username: str = "", password: str = "",
               starttls: bool = False, timeout: float = 30) -> None:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = digest.recipient
    msg["Subject"] = digest.subject
    msg.set_content(digest.body())
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        if starttls:
            smtp.starttls()
        if username:
            smtp.login(username, password)
        smtp.send_message(msg)

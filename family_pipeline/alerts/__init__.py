"""Alerts to registry owners: failed checks of a run become one digest per owner, sent by e-mail
and kept in the ``dq_alerts`` table. No Dagster here; ``defs/alerts.py`` holds the sensor."""

from family_pipeline.alerts.delivery import AlertStore, send_email
from family_pipeline.alerts.digest import Digest, Failure, build_digests
from family_pipeline.alerts.routing import Routing, load_routing

__all__ = ["AlertStore", "Digest", "Failure", "Routing", "build_digests", "load_routing", "send_email"]

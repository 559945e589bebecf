"""Who gets a registry's alerts: its owner from the catalog, unless configuration mutes or
reroutes them (``seeds/alert_routing.yaml`` or the file named by ``FAMILY_PIPELINE_ALERT_ROUTING``).

    mute: [registry_code_or_email, ...]
    reroute: {registry_code_or_email: other@address}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from family_pipeline.catalog.load import default_seeds_dir

__all__ = ["Routing", "load_routing"]


@dataclass(frozen=True)
class Routing:
    mute: frozenset[str] = frozenset()
    reroute: dict[str, str] = field(default_factory=dict)

    def recipient(self, registry: str, owner_email: str) -> str | None:
        if registry in self.mute or owner_email in self.mute:
            return None
        return self.reroute.get(registry) or self.reroute.get(owner_email) or owner_email


def load_routing(path: str | Path | None = None) -> Routing:
    path = Path(path or os.environ.get("FAMILY_PIPELINE_ALERT_ROUTING") or default_seeds_dir() / "alert_routing.yaml")
    if not path.exists():
        return Routing()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(raw) - {"mute", "reroute"}
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; expected 'mute' and 'reroute'")
    return Routing(mute=frozenset(str(x) for x in raw.get("mute") or []),
                   reroute={str(k): str(v) for k, v in (raw.get("reroute") or {}).items()})

"""The asset graph cannot change by accident: every asset key with its group, owners, kinds, tags,
automation condition, partitions and upstream keys, and every check with its blocking flag, is
pinned in ``snapshots/asset_graph.json``.

After an intended change, rewrite the snapshot and review its diff:

    FAMILY_PIPELINE_UPDATE_SNAPSHOTS=1 .venv/bin/pytest family_pipeline_tests/test_defs.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def _graph_snapshot() -> dict:
    from family_pipeline.definitions import defs

    definitions = defs()
    graph = definitions.resolve_asset_graph()
    assets = {}
    for node in sorted(graph.asset_nodes, key=lambda n: n.key.to_user_string()):
        if not node.is_materializable:
            continue
        condition = node.automation_condition
        assets[node.key.to_user_string()] = {
            "group": node.group_name,
            "owners": sorted(node.owners),
            "kinds": sorted(node.kinds),
            "tags": {k: v for k, v in sorted(node.tags.items()) if not k.startswith("dagster/kind/")},
            "automation": (condition.label or type(condition).__name__) if condition else None,
            "partitions": type(node.partitions_def).__name__ if node.partitions_def else None,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
        }
    checks = {}
    for key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get_check_spec(key)
        checks[f"{key.asset_key.to_user_string()}:{key.name}"] = {"blocking": bool(spec.blocking)}
    jobs = sorted(j.name for j in definitions.resolve_all_job_defs() if not j.name.startswith("__"))
    schedules = sorted(s.name for s in definitions.schedules or [])
    sensors = sorted(s.name for s in definitions.sensors or [])
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_definitions_load_and_every_asset_has_an_owner_group_and_description():
    from family_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    materializable = [n for n in graph.asset_nodes if n.is_materializable]
    assert len(materializable) >= 91  # one per registry at least
    for node in materializable:
        assert node.group_name and node.group_name != "default", node.key
        assert node.owners, node.key
        assert node.description, node.key


def test_asset_graph_matches_the_snapshot():
    current = _graph_snapshot()
    if os.environ.get("FAMILY_PIPELINE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    pinned = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    added = sorted(set(current["assets"]) - set(pinned["assets"]))
    removed = sorted(set(pinned["assets"]) - set(current["assets"]))
    assert not added and not removed, f"assets added {added}, removed {removed}: update the snapshot if intended"
    changed = [k for k in current["assets"] if current["assets"][k] != pinned["assets"][k]]
    assert not changed, f"assets changed: {changed[:10]}: update the snapshot if intended"
    assert current == pinned


def test_asset_keys_mirror_where_the_data_lives():
    """An asset ``<stage>/<table>`` is the table ``lake/<stage>/<table>.parquet`` (for the
    ``warehouse`` group, the published mart): keys have two parts and the first is the group."""
    for key, node in _graph_snapshot()["assets"].items():
        parts = dg.AssetKey.from_user_string(key).path
        assert len(parts) == 2 and parts[0] == node["group"], key

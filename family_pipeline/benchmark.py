"""The whole pipeline, stage by stage, timed: wall time, peak memory and rows in and out.

    run_benchmark(data_dir, persons=1_000_000, seed=42)

generates the synthetic country (reported on its own), then materializes the asset groups in
data-flow order, one run per stage on the Dagster instance under ``$DAGSTER_HOME``, so each
stage's figures are its own: the peak resident memory of a stage is measured from a reset
high-water mark (Linux ``/proc/self/clear_refs``), not inherited from the stage before it. The
report is one JSON object, also written to ``<data>/reports/bench.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["STAGES", "run_benchmark"]

#: stages in data-flow order: name -> asset groups (``quality`` is the cross-registry checks)
STAGES = ("registries", "resolution", "quality", "families", "scoring", "services", "warehouse")


def _reset_peak() -> bool:
    """Reset this process's resident-memory high-water mark (Linux); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    try:
        status = Path("/proc/self/status").read_text()
        return round(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024, 1)
    except (OSError, AttributeError):
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@dataclass
class _Stage:
    name: str
    selection: object  # dg.AssetSelection


def _stages(defs) -> list[_Stage]:
    import dagster as dg

    from family_pipeline.defs.jobs import CROSS_REGISTRY_CHECKS

    groups = set(defs.resolve_asset_graph().all_group_names)
    out = []
    for name in STAGES:
        if name == "registries":
            out.append(_Stage(name, dg.AssetSelection.groups("registries") - CROSS_REGISTRY_CHECKS))
        elif name == "quality":
            out.append(_Stage(name, CROSS_REGISTRY_CHECKS))
        elif name in groups:
            out.append(_Stage(name, dg.AssetSelection.groups(name)))
    return out


def _row_count(metadata: dict, name: str) -> int | None:
    value = metadata.get(name)
    return None if value is None else int(getattr(value, "value", value))


def run_benchmark(data_dir: Path | str, persons: int = 1_000_000, seed: int = 42, *, synth: bool = True,
                  evaluate: bool = False, defect_scale: float = 1.0, stages: tuple[str, ...] = STAGES) -> dict:
    import dagster as dg

    from family_pipeline.cli import CONSOLE_LOG_LEVEL
    from family_pipeline.definitions import defs as load_defs
    from family_pipeline.instance import prepare_dagster_home
    from family_pipeline.synth import generate_country

    data = Path(data_dir).resolve()
    report: dict = {"persons": persons, "seed": seed, "defect_scale": defect_scale, "data": str(data),
                    "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    "peak_memory_reset": _reset_peak()}
    if synth:
        t0 = time.perf_counter()
        summary = generate_country(data, persons=persons, seed=seed, defect_scale=defect_scale, progress=False)
        report["synth"] = {"seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb": _peak_mb(),
                           "families": summary.families, "registries": summary.registries,
                           "rows_written": summary.rows}

    os.environ["FAMILY_PIPELINE_DATA"] = str(data)
    prepare_dagster_home()
    instance = dg.DagsterInstance.get()
    base = load_defs()
    stages = [s for s in _stages(base) if s.name in stages]
    jobs = [dg.define_asset_job(f"bench_{s.name}", selection=s.selection) for s in stages]
    defs = dg.Definitions.merge(base, dg.Definitions(jobs=jobs))
    graph = defs.resolve_asset_graph()

    rows: dict = {}  # asset key -> rows of its latest materialization in this benchmark
    report["stages"] = []
    total = 0.0
    for stage in stages:
        _reset_peak()
        job = defs.resolve_job_def(f"bench_{stage.name}")
        t0 = time.perf_counter()
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=CONSOLE_LOG_LEVEL)
        seconds = time.perf_counter() - t0
        total += seconds
        keys = set()
        rows_read = 0
        for event in result.get_asset_materialization_events():
            mat = event.step_materialization_data.materialization
            keys.add(mat.asset_key)
            count = _row_count(mat.metadata, "dagster/row_count")
            if count is not None:
                rows[mat.asset_key] = count
            rows_read += _row_count(mat.metadata, "rows_read") or 0
        checks = [e.asset_check_evaluation_data for e in result.all_events
                  if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
        # a stage of checks alone reads the assets it checks
        upstream = ({p for k in keys for p in graph.get(k).parent_keys if p not in keys}
                    or {c.asset_key for c in checks})
        entry = {
            "stage": stage.name,
            "success": result.success,
            "run_id": result.run_id,
            "seconds": round(seconds, 1),
            "peak_rss_mb": _peak_mb(),
            "assets": len(keys),
            "rows_in": rows_read if stage.name == "registries" else sum(rows.get(k, 0) for k in upstream),
            "rows_out": sum(rows.get(k, 0) for k in keys),
            "checks": len(checks),
            "checks_failed": sum(1 for c in checks if not c.passed),
        }
        report["stages"].append(entry)
        print(json.dumps(entry), flush=True)
        if not result.success:
            break
    report["pipeline_seconds"] = round(total, 1)
    report["success"] = all(s["success"] for s in report["stages"])
    if evaluate:
        from family_pipeline.evaluation import evaluate as evaluate_stages

        _reset_peak()
        t0 = time.perf_counter()
        report["evaluation"] = evaluate_stages(data)
        report["evaluation_seconds"] = round(time.perf_counter() - t0, 1)
    out = data / "reports" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    report["report"] = str(out)
    return report

"""The whole pipeline, end to end, timed: wall time, peak memory and rows in and out per stage.

    run_benchmark(data_dir, persons=1_000_000, seed=42)

generates the synthetic country (reported on its own), then materializes the selected stages as
**one** Dagster run on the instance under ``$DAGSTER_HOME``, executed as production runs are
(family_pipeline.execution; ``processes=N`` runs steps in N processes at once). The pipeline's
figure is the run's wall time. A stage's ``seconds`` is the time during which at least one of its
steps ran (steps of several stages may overlap when run in parallel), its ``window`` the first
start and the last end.

Memory is sampled from ``/proc`` every second over this process and all its descendants
as the proportional set size (PSS: pages that forked step processes share are counted once).
``peak_memory_mb`` is the whole run's peak; a stage's ``peak_total_mb`` is the peak while one of
its steps ran, and ``peak_step_mb`` (steps in their own processes) its largest step process with
the processes that step started, or None where no step lived until a sample. ``steps`` lists
every step with its window and peak. The report is one JSON object, also written to
``<data>/reports/bench.json``.

``truth_in_run=False`` times the run as production runs it: the assets leave out the figures
they would measure against a synthetic country's truth (``FAMILY_PIPELINE_TRUTH_IN_RUN=0``);
``evaluate`` then measures the accuracy after the run, timed on its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["STAGES", "MemorySampler", "run_benchmark"]

#: stages in data-flow order (``quality`` is the cross-registry checks)
STAGES = ("registries", "resolution", "quality", "families", "scoring", "services", "warehouse")


# ------------------------------------------------------------------ memory
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            tree[ppid].append(int(entry.name))
    return tree


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class MemorySampler:
    """PSS of this process and its descendants, sampled in a background thread (Linux)."""

    # reading smaps_rollup walks a process's page tables: at 0.5 s the sampler took 15% of a core
    # in a 2-process run (py-spy); once a second is enough for steps that last seconds or more
    interval: float = 1.0
    peak_by_pid: dict[int, int] = field(default_factory=dict)  # kB, each with its descendants
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (unix time, total kB)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def supported(self) -> bool:
        return Path(f"/proc/{os.getpid()}/smaps_rollup").exists()

    def sample(self) -> None:
        tree = _children()
        pids, todo = [], [os.getpid()]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            todo.extend(tree.get(pid, ()))
        # a process's figure is its own and its descendants' (a step's forked workers are its
        # memory too); parents come before their children in ``pids``, so sum from the end
        own = {pid: _pss_kb(pid) for pid in pids}
        subtree = dict(own)
        for pid in reversed(pids):
            for child in tree.get(pid, ()):
                subtree[pid] += subtree.get(child, 0)
        for pid, kb in subtree.items():
            if kb > self.peak_by_pid.get(pid, 0):
                self.peak_by_pid[pid] = kb
        self.timeline.append((time.time(), sum(own.values())))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> MemorySampler:
        if self.supported:
            self.sample()
            self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.sample()

    def peak_mb(self, start: float | None = None, end: float | None = None) -> float:
        window = [kb for t, kb in self.timeline
                  if (start is None or t >= start) and (end is None or t <= end)]
        return round(max(window, default=0) / 1024, 1)

    def pid_peak_mb(self, pids) -> float:
        return round(max((self.peak_by_pid.get(p, 0) for p in pids), default=0) / 1024, 1)


# ------------------------------------------------------------------ stages
def stage_selection(defs, names: tuple[str, ...]) -> tuple[dict, set, set]:
    """(step → stage) for every op of the graph, and the asset and check keys of ``names``."""
    from family_pipeline.defs.quality import cross_check_keys

    cross = set(cross_check_keys())
    graph = defs.resolve_asset_graph()
    step_stage: dict[str, str] = {}
    assets: set = set()
    checks: set = set()
    for assets_def in graph.assets_defs:
        keys = list(assets_def.keys)
        check_keys = set(assets_def.check_keys)
        if keys:
            stage = graph.get(keys[0]).group_name
        else:
            stage = "quality" if check_keys <= cross else "registries"
        step_stage[assets_def.node_def.name] = stage
        if stage in names:
            assets.update(keys)
            checks.update(check_keys - cross if stage == "registries" else check_keys)
    return step_stage, assets, checks


def _value(metadata: dict, name: str) -> int | None:
    value = metadata.get(name)
    return None if value is None else int(getattr(value, "value", value))


def stage_figures(instance, run_id: str, step_stage: dict, graph, sampler: MemorySampler | None,
                  step_list: list | None = None) -> list[dict]:
    """Per stage: window, steps, peak memory, rows in and out, checks — read from the event log.
    ``step_list`` receives one entry per step: its stage, window, seconds and (in a process of
    its own) peak memory."""
    import dagster as dg

    step_start: dict[str, float] = {}
    spans: dict[str, list] = defaultdict(list)  # stage -> [(start, end)] of its steps
    ok: dict[str, bool] = {}
    step_pids: dict[str, set] = defaultdict(set)
    steps: dict[str, set] = defaultdict(set)
    ended: dict[str, tuple] = {}
    rows: dict = {}
    rows_read: dict[str, int] = defaultdict(int)
    keys: dict[str, set] = defaultdict(set)
    checks: dict[str, list] = defaultdict(list)
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        step = entry.step_key.split("[")[0]
        stage = step_stage.get(step)
        if stage is None:
            continue
        if event.pid and event.pid != os.getpid():  # the run's process logs a step's launch
            step_pids[entry.step_key].add(event.pid)
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            steps[stage].add(entry.step_key)
            step_start[entry.step_key] = entry.timestamp
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            spans[stage].append((step_start.get(entry.step_key, entry.timestamp), entry.timestamp))
            ended[entry.step_key] = (stage, spans[stage][-1], kind == dg.DagsterEventType.STEP_SUCCESS)
            ok[stage] = ok.get(stage, True) and kind == dg.DagsterEventType.STEP_SUCCESS
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.step_materialization_data.materialization
            keys[stage].add(mat.asset_key)
            count = _value(mat.metadata, "dagster/row_count")
            if count is not None:
                rows[mat.asset_key] = count
            rows_read[stage] += _value(mat.metadata, "rows_read") or 0
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            checks[stage].append(event.asset_check_evaluation_data)
    shared = not any(step_pids.values())  # in process: every step ran in this process
    pids: dict[str, set] = defaultdict(set)  # stage -> its steps' processes
    for key, stage_pids in step_pids.items():
        pids[step_stage[key.split("[")[0]]] |= stage_pids
    if step_list is not None:
        for key, (stage, (a, b), success) in sorted(ended.items(), key=lambda item: item[1][1]):
            step_list.append({"step": key, "stage": stage, "success": success, "window": [round(a, 2), round(b, 2)],
                              "seconds": round(b - a, 1),
                              # None: not measured (in process, or over before its first sample)
                              "peak_mb": (sampler.pid_peak_mb(step_pids[key]) or None) if sampler and not shared
                              else None})
    out = []
    for stage in STAGES:
        if not spans[stage]:
            continue
        mine = keys[stage]
        # a stage of checks alone reads the assets it checks
        upstream = ({p for k in mine for p in graph.get(k).parent_keys if p not in mine}
                    or {c.asset_key for c in checks[stage]})
        for key in upstream - rows.keys():  # made by an earlier run: its latest materialization
            event = instance.get_latest_materialization_event(key)
            if event is not None:
                rows[key] = _value(event.asset_materialization.metadata, "dagster/row_count") or 0
        t0, t1 = min(a for a, _ in spans[stage]), max(b for _, b in spans[stage])
        out.append({
            "stage": stage,
            "success": ok.get(stage, False),
            "seconds": round(_covered(spans[stage]), 1),
            "window": [round(t0, 2), round(t1, 2)],
            "steps": len(steps[stage]),
            # None: not measured, as for a step (every step over before its first sample)
            "peak_step_mb": (sampler.pid_peak_mb(pids[stage]) or None) if sampler and not shared else None,
            "peak_total_mb": _peak_during(sampler, spans[stage]) if sampler else None,
            "assets": len(mine),
            "rows_in": rows_read[stage] if stage == "registries" else sum(rows.get(k, 0) for k in upstream),
            "rows_out": sum(rows.get(k, 0) for k in mine),
            "checks": len(checks[stage]),
            "checks_failed": sum(1 for c in checks[stage] if not c.passed),
        })
    return out


def _covered(spans: list[tuple[float, float]]) -> float:
    """Seconds during which at least one of the spans was running."""
    total, reach = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total


def _peak_during(sampler: MemorySampler, spans: list[tuple[float, float]]) -> float:
    """Peak while one of the spans ran, a sampling interval either side (a step shorter than the
    interval still gets a sample)."""
    pad = sampler.interval
    return max((sampler.peak_mb(a - pad, b + pad) for a, b in spans), default=0.0)


def run_benchmark(data_dir: Path | str, persons: int = 1_000_000, seed: int = 42, *, synth: bool = True,
                  evaluate: bool = False, defect_scale: float = 1.0, stages: tuple[str, ...] = STAGES,
                  processes: int = 1, truth_in_run: bool = True, whole_country_at_once: int | None = None) -> dict:
    import dagster as dg

    from family_pipeline.cli import CONSOLE_LOG_LEVEL
    from family_pipeline.definitions import build
    from family_pipeline.evaluation.person_truth import TRUTH_IN_RUN_ENV
    from family_pipeline.execution import run_job, whole_country_steps
    from family_pipeline.instance import prepare_dagster_home
    from family_pipeline.synth import generate_country

    data = Path(data_dir).resolve()
    report: dict = {"persons": persons, "seed": seed, "defect_scale": defect_scale, "data": str(data), "processes": processes,
                    "truth_in_run": truth_in_run,
                    "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    if synth:
        t0 = time.perf_counter()
        with MemorySampler() as mem:
            summary = generate_country(data, persons=persons, seed=seed, defect_scale=defect_scale, progress=False)
        report["synth"] = {"seconds": round(time.perf_counter() - t0, 1), "peak_memory_mb": mem.peak_mb(),
                           "families": summary.families, "registries": summary.registries,
                           "rows_written": summary.rows}
        print(json.dumps({"stage": "synth", **report["synth"]}), flush=True)

    os.environ["FAMILY_PIPELINE_DATA"] = str(data)
    if not truth_in_run:  # the assets report no truth figures: timed as production runs it
        os.environ[TRUTH_IN_RUN_ENV] = "0"
    else:
        os.environ.pop(TRUTH_IN_RUN_ENV, None)
    prepare_dagster_home()
    instance = dg.DagsterInstance.get()
    defs = build()
    graph = defs.resolve_asset_graph()
    selected = tuple(s for s in STAGES if s in stages)
    step_stage, assets, checks = stage_selection(defs, selected)
    if assets == set(graph.get_all_asset_keys()) and checks == set(graph.asset_check_keys):
        assets = checks = None  # the whole job, as a scheduled run executes it (no subset to rebuild per step)

    if whole_country_at_once is None:
        whole_country_at_once = whole_country_steps(data, processes)
    report["whole_country_at_once"] = min(processes, whole_country_at_once)
    t0 = time.perf_counter()
    with MemorySampler() as mem:
        result = run_job(instance, asset_keys=assets, check_keys=checks, run_config=CONSOLE_LOG_LEVEL,
                         processes=processes, whole_country_at_once=whole_country_at_once)
    report["pipeline_seconds"] = round(time.perf_counter() - t0, 1)
    report["peak_memory_mb"] = mem.peak_mb()
    # the whole run's memory a sample at a time: (unix time, MB), to lay beside the steps' windows
    report["memory_timeline"] = [[round(t, 2), round(kb / 1024)] for t, kb in mem.timeline]
    report["run_id"] = result.run_id
    report["steps"] = []
    report["stages"] = stage_figures(instance, result.run_id, step_stage, graph, mem, report["steps"])
    for entry in report["stages"]:
        print(json.dumps(entry), flush=True)
    report["success"] = bool(result.success) and [s["stage"] for s in report["stages"]] == list(selected)
    print(json.dumps({"pipeline_seconds": report["pipeline_seconds"], "peak_memory_mb": report["peak_memory_mb"],
                      "success": report["success"]}), flush=True)
    if evaluate:
        from family_pipeline.evaluation import evaluate as evaluate_stages

        t0 = time.perf_counter()
        with MemorySampler() as mem:
            report["evaluation"] = evaluate_stages(data)
        report["evaluation_seconds"] = round(time.perf_counter() - t0, 1)
        report["evaluation_peak_memory_mb"] = mem.peak_mb()
    out = data / "reports" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    report["report"] = str(out)
    return report

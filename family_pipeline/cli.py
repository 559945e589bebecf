"""``family-pipeline``: generate a synthetic country, materialize the family map, evaluate it.

    family-pipeline synth --persons 100000 --seed 42 --out data
    family-pipeline materialize [--select registries/gbd_fl]
    family-pipeline evaluate
    family-pipeline bench-linkage   # person linkage alone on an ingested data directory
    family-pipeline demo            # all three on the default country
    family-pipeline bench --persons 1000000   # every stage timed: wall time, peak memory, rows
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

from family_pipeline.lib.lake import default_data_dir

DEFAULT_PERSONS = 100_000
#: the terminal shows what each step did (INFO), not Dagster's step-by-step DEBUG events; the
#: instance's event log keeps everything, and the UI shows it
CONSOLE_LOG_LEVEL = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
DEFAULT_SEED = 42


def _peak_rss_mb() -> float:
    """Peak resident memory of this process or of its largest finished child (synth workers)."""
    return round(max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
                 / 1024, 1)


def cmd_synth(args: argparse.Namespace) -> int:
    from family_pipeline.synth import generate_country

    out = Path(args.out or default_data_dir())
    summary = generate_country(out, persons=args.persons, seed=args.seed, defect_scale=args.defect_scale,
                               progress=None if not args.quiet else False)
    print(json.dumps({**summary.as_dict(), "peak_rss_mb": _peak_rss_mb()}, ensure_ascii=False))
    return 0


def run_family_map(data_dir: Path, selection: list[str] | None = None, processes: int = 1) -> tuple[bool, str]:
    """Materialize the ``family_map`` job (or a selection of assets) on the Dagster instance
    under ``$DAGSTER_HOME``; returns (success, run id)."""
    import dagster as dg

    from family_pipeline.execution import run_job
    from family_pipeline.instance import prepare_dagster_home

    os.environ["FAMILY_PIPELINE_DATA"] = str(data_dir.resolve())
    home = prepare_dagster_home()
    instance = dg.DagsterInstance.get()
    keys = [dg.AssetKey.from_user_string(s) for s in selection] if selection else None
    result = run_job(instance, asset_keys=keys, run_config=CONSOLE_LOG_LEVEL, processes=processes)
    print(f"dagster home: {home}; run {result.run_id}: {'success' if result.success else 'FAILED'}", file=sys.stderr)
    return result.success, result.run_id


def cmd_materialize(args: argparse.Namespace) -> int:
    ok, _ = run_family_map(Path(args.data or default_data_dir()), args.select)
    return 0 if ok else 1


def cmd_bench_linkage(args: argparse.Namespace) -> int:
    """Linkage alone on an ingested lake: mentions → link → golden records, timed."""
    import pandas as pd

    from family_pipeline.catalog import catalog
    from family_pipeline.defs.resolution import MENTION_COLUMNS
    from family_pipeline.lib.lake import Lake
    from family_pipeline.resolution import link
    from family_pipeline.resolution.golden import (
        folding_registries,
        golden_records,
        person_ids,
    )
    from family_pipeline.resolution.mentions import person_mentions

    lake = Lake(Path(args.data or default_data_dir()).resolve())
    t0 = time.perf_counter()
    table, _ = person_mentions(lake, catalog())
    mentions = table.to_pandas()
    del table  # the DataFrame is what linkage reads; the Arrow copy would only raise the peak
    t1 = time.perf_counter()
    result = link(mentions, MENTION_COLUMNS, national_id="iin")
    t2 = time.perf_counter()
    pid = person_ids(mentions, result.cluster)
    persons = golden_records(mentions, pid, folding_registries(catalog()))
    t3 = time.perf_counter()
    out = {"data": str(lake.root), "mentions": len(mentions), "signatures": result.stats["signatures"],
           "candidate_pairs": result.stats["candidate_pairs"], "persons": len(persons),
           "seconds": {"mentions": round(t1 - t0, 1), "link": round(t2 - t1, 1), "golden": round(t3 - t2, 1),
                       "total": round(t3 - t0, 1)},
           "peak_rss_mb": _peak_rss_mb()}
    print(json.dumps(out), file=sys.stderr)  # the figures before the (slower) truth comparison
    if lake.truth("mentions").exists():
        from family_pipeline.evaluation.resolution import linkage_accuracy

        xref = mentions[["registry", "record_id", "group"]].assign(person_id=pid, signature=result.signature)
        out["accuracy"] = linkage_accuracy(xref, pd.read_parquet(lake.truth("mentions")),
                                           result.pairs[["signature_a", "signature_b"]])
    print(json.dumps(out, indent=2))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from family_pipeline.benchmark import STAGES, run_benchmark

    report = run_benchmark(Path(args.data or default_data_dir()), persons=args.persons, seed=args.seed,
                           synth=not args.no_synth, evaluate=args.evaluate or args.truth_after, defect_scale=args.defect_scale,
                           stages=tuple(args.stages or STAGES), processes=args.processes,
                           whole_country_at_once=args.whole_country_steps,
                           truth_in_run=not (args.truth_after or args.no_truth))
    summary = {k: report[k] for k in ("persons", "synth", "pipeline_seconds", "peak_memory_mb", "success", "report")
               if k in report}
    print(json.dumps(summary, indent=2))
    return 0 if report["success"] else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from family_pipeline.evaluation import evaluate

    report = evaluate(Path(args.data or default_data_dir()))
    text = json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True)
    print(text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from family_pipeline.evaluation import evaluate
    from family_pipeline.synth import generate_country

    data = Path(args.data or default_data_dir()).resolve()
    t0 = time.perf_counter()
    summary = generate_country(data, persons=args.persons, seed=args.seed, progress=None)
    t1 = time.perf_counter()
    print(f"synthetic country: {summary.persons} persons, {summary.families} families, "
          f"{summary.registries} registries, {summary.rows} rows in {t1 - t0:.1f} s -> {data}", file=sys.stderr)
    ok, run_id = run_family_map(data)
    t2 = time.perf_counter()
    report = evaluate(data)
    out = data / "reports" / "evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps({
        "success": ok,
        "run_id": run_id,
        "synth_seconds": round(t1 - t0, 1),
        "pipeline_seconds": round(t2 - t1, 1),
        "peak_rss_mb": _peak_rss_mb(),
        "where_to_look": {
            "data": str(data),
            "tables": str(data / "lake"),
            "evaluation": str(out),
            "dagster_ui": "dagster dev -w workspace.yaml  (then http://127.0.0.1:3000)",
            "dagster_home": os.environ.get("DAGSTER_HOME"),
        },
    }, indent=2))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="family-pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="generate a synthetic country into a landing zone")
    s.add_argument("--persons", type=int, default=DEFAULT_PERSONS)
    s.add_argument("--seed", type=int, default=DEFAULT_SEED)
    s.add_argument("--out", help="data directory (default $FAMILY_PIPELINE_DATA or ./data)")
    s.add_argument("--defect-scale", type=float, default=1.0, help="multiply every defect rate (0 = clean)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_synth)

    m = sub.add_parser("materialize", help="run the family_map job on the Dagster instance")
    m.add_argument("--data", help="data directory (default $FAMILY_PIPELINE_DATA or ./data)")
    m.add_argument("--select", nargs="*", help="asset keys such as registries/gbd_fl")
    m.set_defaults(fn=cmd_materialize)

    b = sub.add_parser("bench-linkage", help="time person linkage alone on an ingested data directory")
    b.add_argument("--data")
    b.set_defaults(fn=cmd_bench_linkage)

    bb = sub.add_parser("bench", help="generate a country and run every stage timed (JSON report)")
    bb.add_argument("--persons", type=int, default=1_000_000)
    bb.add_argument("--seed", type=int, default=DEFAULT_SEED)
    bb.add_argument("--data", help="data directory (default $FAMILY_PIPELINE_DATA or ./data)")
    bb.add_argument("--no-synth", action="store_true", help="reuse the country already in --data")
    truth = bb.add_mutually_exclusive_group()
    truth.add_argument("--evaluate", action="store_true", help="add the evaluation report (reads the truth)")
    truth.add_argument("--truth-after", action="store_true",
                       help="time the run as production runs it, without the truth figures in the assets' metadata; "
                            "the accuracy comes from the evaluation after it (implies --evaluate)")
    truth.add_argument("--no-truth", action="store_true",
                       help="time the run as production runs it and measure no accuracy at all (no truth figures "
                            "in the assets' metadata, no evaluation after it): at national size the evaluation "
                            "reads the whole truth")
    bb.add_argument("--defect-scale", type=float, default=1.0, help="multiply every defect rate of the country")
    bb.add_argument("--stages", nargs="*", help="only these stages, in data-flow order (default: all)")
    bb.add_argument("--processes", type=int, default=1,
                    help="run steps in this many processes at once (multiprocess executor); default one process")
    bb.add_argument("--whole-country-steps", type=int, default=None,
                    help="with several processes, how many steps that hold the whole country in memory may run at "
                         "once (default: as many as the machine's memory fits by the size of the exports)")
    bb.set_defaults(fn=cmd_bench)

    e = sub.add_parser("evaluate", help="print the accuracy of every stage against the truth as JSON")
    e.add_argument("--data")
    e.set_defaults(fn=cmd_evaluate)

    d = sub.add_parser("demo", help="synth + materialize + evaluate on the default country")
    d.add_argument("--persons", type=int, default=DEFAULT_PERSONS)
    d.add_argument("--seed", type=int, default=DEFAULT_SEED)
    d.add_argument("--data")
    d.set_defaults(fn=cmd_demo)

    args = p.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())

"""Entity resolution assets (group ``resolution``): mentions → linked persons with golden records.

The logic lives in ``family_pipeline.resolution`` (no Dagster there); these assets read the
lake, call it, write tables back and report counts, the model's weights and — when the data is a
synthetic country with its truth — the accuracy of the linkage. Nothing personal reaches the
metadata.
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from family_pipeline.catalog import catalog
from family_pipeline.defs.registries import registry_key
from family_pipeline.defs.resources import DATA_ENGINEERING, LakeResource
from family_pipeline.evaluation.person_truth import truth_in_run
from family_pipeline.execution import step_tags
from family_pipeline.lib.lake import ROW_GROUP, write_columns, write_slices
from family_pipeline.lib.parquet_columns import ParquetColumns
from family_pipeline.resolution import FellegiSunter, link
from family_pipeline.resolution.blocking import release_free_memory, sorted_unique
from family_pipeline.resolution.golden import (
    PersonIds,
    folding_registries,
    golden_slices,
    golden_table,
    golden_votes,
)
from family_pipeline.resolution.mentions import write_person_mentions

GROUP = "resolution"
MENTIONS = dg.AssetKey([GROUP, "person_mentions"])
PERSONS = dg.AssetKey([GROUP, "persons"])
XREF = dg.AssetKey([GROUP, "person_xref"])
REVIEW = dg.AssetKey([GROUP, "person_review_pairs"])
CANDIDATES = dg.AssetKey([GROUP, "person_candidate_pairs"])
#: how the mention columns map onto the linker's fields
MENTION_COLUMNS = {"national_id": "iin", "last_name": "last_name", "first_name": "first_name",
                   "patronymic": "patronymic", "full_name": "full_name", "birth_date": "birth_date",
                   "sex": "sex", "region": "region"}
OWNER = DATA_ENGINEERING
#: up to this many mentions the golden records are voted on the linker's clusters while the
#: person ids are made, on the other core (at 1M persons, 13.5M mentions: the step ends about
#: 8 s sooner for 1.5 GB more); above it, after them, with the linkage's arrays freed first
GOLDEN_BESIDE_IDS_MENTIONS = 30_000_000
ENCODED = ("registry", "group")
#: mentions read at a time for the person ids and the crosswalk (its slices of rows as written)
XREF_SLICE = 4 * ROW_GROUP


def _text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text columns are written as large strings, as they were when the tables came from pandas."""
    return column.cast(pa.large_string())


class LinkageConfig(dg.Config):
    threshold: float = 0.5
    """match probability at which two signatures are linked"""
    review_low: float = 0.05
    review_high: float = 0.95
    """pairs scored between these go to clerical review"""
    reuse_model: bool = False
    """score with the parameters saved by the previous run instead of estimating them again"""


def _xref_slices(mentions: ParquetColumns, ids: PersonIds, result, shown: np.ndarray, shown_keys: list[pa.Table]):
    """The crosswalk a slice of mentions at a time, each slice's person ids made as it is read;
    the keys of the ``shown`` rows (sorted) are kept in ``shown_keys`` for the review pairs."""
    for start, part in mentions.slices(list(PersonIds.KEY_COLUMNS), XREF_SLICE):
        ids.add_first_rows(start, part)  # every cluster met so far has its id now
        stop = start + part.num_rows
        keys = pa.table({k: _text(part.column(k)) for k in PersonIds.KEY_COLUMNS})
        lo, hi = np.searchsorted(shown, [start, stop])
        shown_keys.append(keys.take(pa.array(shown[lo:hi] - start)))
        yield keys.append_column("person_id", pa.array(ids.values[result.cluster[start:stop]])) \
            .append_column("signature", pa.array(result.signature[start:stop])) \
            .append_column("match_probability", pa.array(np.round(result.signature_probability[result.signature[start:stop]], 6)))


@dg.asset(
    key=MENTIONS,
    group_name=GROUP,
    deps=[registry_key(s.code) for s in catalog().registries if s.person_groups],
    kinds={"parquet"},
    owners=[OWNER],
    description="Every reference to a person in every registry (registry, record id, reference group, "
                "IIN as given, name parts, birth date, sex, region, address).",
)
def person_mentions(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    store = lake.lake()
    path = store.table(GROUP, "person_mentions")
    per_registry = write_person_mentions(store, catalog(), path)  # registry by registry, never all at once
    rows = sum(per_registry.values())
    context.log.info(f"{rows} mentions from {len(per_registry)} registries")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "registries": len(per_registry),
        "mentions_by_registry": dg.MetadataValue.json(per_registry),
        "table": dg.MetadataValue.path(str(path)),
    })


@dg.multi_asset(
    specs=[
        dg.AssetSpec(PERSONS, deps=[MENTIONS], group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     description="One golden record per person: survivorship over all mentions, each field with "
                                 "the registry it came from. Restricted: holds IINs and names."),
        dg.AssetSpec(XREF, deps=[MENTIONS], group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     description="Mention → person id, with the match probability of the link."),
        dg.AssetSpec(REVIEW, deps=[MENTIONS], group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     description="Undecided pairs for clerical review: the two mentions, the probability, "
                                 "the agreement level of every field."),
        dg.AssetSpec(CANDIDATES, deps=[MENTIONS], group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     description="Every blocked candidate pair of signatures with its comparison levels and score."),
    ],
    op_tags=step_tags(0, whole_country=True),
)
def resolve_persons(context: dg.AssetExecutionContext, config: LinkageConfig, lake: LakeResource):
    store = lake.lake()
    t0 = time.perf_counter()
    # each column is read while it is encoded: the whole table of text never sits in memory
    mentions = ParquetColumns(store.table(GROUP, "person_mentions"), encoded=ENCODED)
    model_path = store.root / "lake" / GROUP / "person_model.json"
    model = None
    if config.reuse_model and model_path.exists():
        model = FellegiSunter.from_dict(json.loads(model_path.read_text()))

    def progress(phase: str, figures: dict[str, float]) -> None:
        context.log.info(f"linkage: {phase} done in {figures['seconds']} s, peak {figures['peak_rss_mb']:.0f} MB so far")

    result = link(mentions, MENTION_COLUMNS, national_id="iin", threshold=config.threshold,
                  model=model, review_band=(config.review_low, config.review_high), progress=progress)
    phases = {"link": round(time.perf_counter() - t0, 2)}  # wall seconds per step, for operators
    folding = folding_registries(catalog())
    n_clusters = int(result.cluster.max()) + 1 if len(result.cluster) else 0
    voter = votes_job = None
    if len(mentions) <= GOLDEN_BESIDE_IDS_MENTIONS:
        voter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="golden-votes")
        votes_job = voter.submit(golden_votes, ParquetColumns(mentions.path, encoded=ENCODED), result.cluster,
                                 n_clusters, folding)
    # tables are written on a second thread (Parquet encoding leaves the GIL) while the next one
    # is made: the candidate pairs while the person ids are made and the crosswalk written
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="resolution-writer")
    pairs = result.pairs
    candidates_job = writer.submit(write_columns, store.table(GROUP, "person_candidate_pairs"),
                                   {c: pairs[c].to_numpy() for c in pairs.columns})
    # person ids and the crosswalk a slice of mentions at a time (``PersonIds``): the mentions'
    # IINs and keys are never all in memory
    ids = PersonIds(result.cluster)
    for start, part in mentions.slices(list(PersonIds.ANCHOR_COLUMNS), XREF_SLICE):
        ids.add_anchors(start, part)
    ids.claim()
    probability = pairs.probability.to_numpy()
    band = (probability >= config.review_low) & (probability < config.review_high)
    review = pairs[band]
    review_rows = {side: result.first_row[review[f"signature_{side}"].to_numpy()] for side in ("a", "b")}
    shown = sorted_unique(np.concatenate(list(review_rows.values())))  # rows whose keys the review shows
    shown_keys: list[pa.Table] = []
    paths = {XREF: write_slices(store.table(GROUP, "person_xref"),
                                _xref_slices(mentions, ids, result, shown, shown_keys))}
    cluster_pid = ids.values
    keys = pa.concat_tables(shown_keys)
    review_columns = {c: review[c].to_numpy() for c in review.columns}
    for side, rows in review_rows.items():
        at = pa.array(np.searchsorted(shown, rows))
        for k in PersonIds.KEY_COLUMNS:
            review_columns[f"{k}_{side}"] = keys.column(k).take(at)  # only the rows under review
        review_columns[f"person_id_{side}"] = cluster_pid[result.cluster[rows]]
    paths[REVIEW] = store.write(GROUP, "person_review_pairs", pa.table(review_columns))
    phases["person_ids_xref_review"] = round(time.perf_counter() - t0 - sum(phases.values()), 2)
    counts = {"mentions": len(mentions), "review": len(review), "pairs": len(pairs), "band": int(band.sum())}
    del keys, shown_keys, shown, review, review_rows, review_columns, band, probability, ids
    paths[CANDIDATES] = candidates_job.result()
    writer.shutdown()
    del pairs, candidates_job
    phases["candidate_pairs"] = round(time.perf_counter() - t0 - sum(phases.values()), 2)
    # the truth accuracy reads only the tables already written: it runs on the second core while
    # the golden records are voted (both spend their time in Arrow and numpy, outside the GIL)
    accuracy_pool = accuracy_job = None
    if store.truth("mentions").exists() and truth_in_run(counts["mentions"]):
        # a national country is measured by `family-pipeline evaluate` after the run instead:
        # beside the golden records its truth would double the step's memory
        from family_pipeline.evaluation.resolution import linkage_accuracy

        accuracy_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="truth-accuracy")
        accuracy_job = accuracy_pool.submit(
            linkage_accuracy, ParquetColumns(paths[XREF]), ParquetColumns(store.truth("mentions")),
            ParquetColumns(paths[CANDIDATES]))
    stats, model_fit, cluster = result.stats, result.model, result.cluster
    del result  # the golden records need only the mentions and the person ids
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_text(json.dumps(model_fit.to_dict(), indent=1, sort_keys=True) + "\n")
    if len(np.unique(cluster_pid)) == n_clusters:  # the votes of a cluster are its person's
        votes = votes_job.result() if votes_job is not None else golden_votes(mentions, cluster, n_clusters, folding)
        del cluster
        persons = golden_slices(votes, cluster_pid)  # written a slice of persons at a time
    else:  # two clusters share an id, and are one person: voted on the person ids
        if votes_job is not None:
            votes_job.result()
        persons = iter([golden_table(mentions, cluster_pid[cluster], folding)])
        del cluster
    if voter is not None:
        voter.shutdown()
    del votes_job, voter, cluster_pid
    counts.update({"persons": 0, "alive": 0})

    def counted(slices):
        for part in slices:
            counts["persons"] += part.num_rows
            counts["alive"] += int(pc.sum(part.column("alive")).as_py() or 0)
            yield part

    paths[PERSONS] = write_slices(store.table(GROUP, "persons"), counted(persons))
    del persons, mentions
    phases["golden_records"] = round(time.perf_counter() - t0 - sum(phases.values()), 2)
    seconds = round(time.perf_counter() - t0, 2)
    accuracy = {}
    if accuracy_job is not None:
        # the tables as written and the truth, a few columns in memory at a time
        accuracy = accuracy_job.result()
        accuracy_pool.shutdown()
        phases["truth_accuracy_after_golden"] = round(time.perf_counter() - t0 - seconds, 2)
    context.log.info(f"{counts['mentions']} mentions → {counts['persons']} persons in {seconds}s; "
                     f"{stats['candidate_pairs']} candidate pairs, {counts['band']} for review")
    persons_meta = {
        "dagster/row_count": counts["persons"],
        "persons_alive": counts["alive"],
        "mentions": counts["mentions"],
        "signatures": stats["signatures"],
        "candidate_pairs": stats["candidate_pairs"],
        "blocking": dg.MetadataValue.json(stats["blocking"]),
        "clustering": dg.MetadataValue.json(stats["clustering"]),
        "model_weights": dg.MetadataValue.json(model_fit.to_dict()["weights"]),
        "model_prior": model_fit.prior,
        "seconds": seconds,
        "seconds_by_step": dg.MetadataValue.json({**phases, "linker": stats.get("profile", {})}),
        "table": dg.MetadataValue.path(str(paths[PERSONS])),
    }
    if accuracy:
        persons_meta.update({
            "truth_pairwise_precision": accuracy["pairwise"]["precision"],
            "truth_pairwise_recall": accuracy["pairwise"]["recall"],
            "truth_pairwise_f1": accuracy["pairwise"]["f1"],
            "truth_persons_recovered_exactly": accuracy["clusters"]["persons_recovered_exactly"],
            "truth_blocking_pair_completeness": accuracy.get("blocking", {}).get("pair_completeness", float("nan")),
            "truth_accuracy": dg.MetadataValue.json(accuracy),
        })
    yield dg.MaterializeResult(asset_key=PERSONS, metadata=persons_meta)
    yield dg.MaterializeResult(asset_key=XREF, metadata={"dagster/row_count": counts["mentions"],
                                                         "table": dg.MetadataValue.path(str(paths[XREF]))})
    yield dg.MaterializeResult(asset_key=REVIEW, metadata={"dagster/row_count": counts["review"],
                                                           "table": dg.MetadataValue.path(str(paths[REVIEW]))})
    yield dg.MaterializeResult(asset_key=CANDIDATES, metadata={"dagster/row_count": counts["pairs"],
                                                               "table": dg.MetadataValue.path(str(paths[CANDIDATES]))})


# ------------------------------------------------------------------ livestock
ANIMALS = dg.AssetKey([GROUP, "animal_records"])
ANOMALIES = dg.AssetKey([GROUP, "livestock_anomalies"])
ANOMALY_SUMMARY = dg.AssetKey([GROUP, "livestock_anomaly_summary"])
LIVESTOCK_OWNER = catalog().registry("isj_livestock").owner_email


@dg.multi_asset(
    specs=[
        dg.AssetSpec(ANIMALS, group_name=GROUP, kinds={"parquet"}, owners=[OWNER],
                     deps=[registry_key(s.code) for s in catalog().registries if s.has_animals]
                     + [registry_key("gbd_fl"), registry_key("zags_deaths")],
                     description="Every animal record of the livestock registries, linked into animals "
                                 "(tags with typos, owner, species, sex, birth date, settlement)."),
        dg.AssetSpec(ANOMALIES, group_name=GROUP, kinds={"parquet"}, owners=[OWNER, LIVESTOCK_OWNER], deps=[ANIMALS],
                     description="Animals registered in several settlements at once (virtual cows) and animals "
                                 "of a dead or unknown owner (phantoms), per region and settlement. Owners appear "
                                 "only as pseudonymous keys."),
        dg.AssetSpec(ANOMALY_SUMMARY, group_name=GROUP, kinds={"parquet"}, owners=[OWNER, LIVESTOCK_OWNER],
                     deps=[ANOMALIES], description="Virtual and phantom animals counted per region and settlement."),
    ],
    # every animal record and the population register at once (5.8 GB at 5M persons): beside the
    # persons' linkage the two made the 5M run's peak (11.7-12.1 GB), so where memory allows one
    # whole-country step at a time they take turns
    op_tags=step_tags(0, whole_country=True),
)
def resolve_animals(context: dg.AssetExecutionContext, lake: LakeResource):
    from family_pipeline.resolution.livestock import (
        ANOMALY_INPUT,
        animal_records,
        link_animals,
        livestock_anomalies,
        livestock_summary,
    )

    store = lake.lake()
    records = animal_records(store, catalog())
    release_free_memory()  # the registries' tables, read one by one, leave freed pages behind
    linked = link_animals(records)
    del records
    paths = {ANIMALS: store.write(GROUP, "animal_records", linked)}
    meta = {"dagster/row_count": linked.num_rows, "animals": pc.count_distinct(linked.column("animal_key"), mode="all").as_py(),
            "table": dg.MetadataValue.path(str(paths[ANIMALS]))}
    # the anomalies read back the columns they use: the whole linked table (36M records at 20M
    # persons) is not held beside the population register and its lookups
    del linked
    release_free_memory()
    anomalies = livestock_anomalies(store.read(GROUP, "animal_records", columns=ANOMALY_INPUT), store)
    summary = livestock_summary(anomalies)
    paths.update({ANOMALIES: store.write(GROUP, "livestock_anomalies", anomalies),
                  ANOMALY_SUMMARY: store.write(GROUP, "livestock_anomaly_summary", summary)})
    kinds = pd.Series(anomalies.column("kind").to_pylist()).value_counts().to_dict() if anomalies.num_rows else {}
    if store.truth("animal_records").exists() and truth_in_run():
        from family_pipeline.evaluation.livestock import livestock_section

        accuracy = livestock_section(store)
        meta["truth_accuracy"] = dg.MetadataValue.json(accuracy)
    context.log.info(f"{meta['dagster/row_count']} animal records, anomalies: {kinds}")
    yield dg.MaterializeResult(asset_key=ANIMALS, metadata=meta)
    yield dg.MaterializeResult(asset_key=ANOMALIES, metadata={
        "dagster/row_count": anomalies.num_rows, "by_kind": dg.MetadataValue.json({str(k): int(v) for k, v in kinds.items()}),
        "table": dg.MetadataValue.path(str(paths[ANOMALIES]))})
    yield dg.MaterializeResult(asset_key=ANOMALY_SUMMARY, metadata={
        "dagster/row_count": summary.num_rows, "table": dg.MetadataValue.path(str(paths[ANOMALY_SUMMARY]))})

"""Person resolution: the assets on a synthetic country, and the linker on cases made by hand.

The hand-made people are mixed into the country's own mentions, so the model is fitted on a
realistic population and the cases are judged the way real records would be.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from family_pipeline.defs.resolution import (
    CANDIDATES,
    MENTION_COLUMNS,
    MENTIONS,
    PERSONS,
    REVIEW,
    XREF,
)
from family_pipeline.evaluation import evaluate
from family_pipeline.evaluation.resolution import linkage_accuracy, namesakes
from family_pipeline.lib.identifiers import make_iins, valid_iin_mask
from family_pipeline.resolution import FellegiSunter, link, linker
from family_pipeline.resolution.comparisons import FIELDS

RESOLUTION = [MENTIONS, PERSONS, XREF, REVIEW, CANDIDATES]


@pytest.fixture(scope="module")
def resolved(family_map_run):
    return family_map_run


@pytest.fixture(scope="module")
def linked(resolved):
    """The session's mentions read column by column (registry and group as Parquet's
    dictionaries) and the linker's cluster of each."""
    from family_pipeline.lib.parquet_columns import ParquetColumns

    path = resolved["lake"].table("resolution", "person_mentions")
    mentions = ParquetColumns(path, encoded=("registry", "group"))
    return mentions, link(mentions, MENTION_COLUMNS, national_id="iin").cluster


def _materialization(result, key):
    return next(e for e in result.get_asset_materialization_events() if e.asset_key == key)


def test_assets_reach_the_accuracy_goal_and_report_it(resolved):
    meta = _materialization(resolved["result"], PERSONS).materialization.metadata
    assert meta["truth_pairwise_f1"].value >= 0.99
    assert meta["truth_pairwise_precision"].value >= 0.995
    assert meta["truth_blocking_pair_completeness"].value >= 0.9
    report = evaluate(resolved["root"])["resolution"]["persons"]
    assert report["pairwise"]["f1"] == meta["truth_pairwise_f1"].value
    assert report["blocking"]["reachable_completeness"] >= 0.97


def test_every_mention_has_one_person_and_persons_are_golden(resolved):
    lake = resolved["lake"]
    mentions = lake.read("resolution", "person_mentions").to_pandas()
    xref = lake.read("resolution", "person_xref").to_pandas()
    persons = lake.read("resolution", "persons").to_pandas()
    assert len(xref) == len(mentions)
    assert not xref.duplicated(["registry", "record_id", "group"]).any()
    assert set(xref.person_id) == set(persons.person_id) and persons.person_id.is_unique
    assert xref.match_probability.between(0, 1).all()
    # golden IINs are checked and unique; fields name their source registry
    with_iin = persons[persons.iin.notna()]
    assert valid_iin_mask(with_iin.iin.to_numpy()).mean() > 0.99
    assert with_iin.iin.is_unique
    assert (persons.loc[persons.last_name.notna(), "last_name_source"].notna()).all()
    # the population register wins where it speaks
    gbd = persons.iin_source.eq("gbd_fl").mean()
    assert gbd > 0.8
    review = lake.read("resolution", "person_review_pairs").to_pandas()
    assert review.probability.between(0.05, 0.95).all()


def test_no_personal_data_in_resolution_metadata(resolved, small_country):
    truth = pd.read_parquet(small_country / "truth/persons.parquet", columns=["iin", "last_name"])
    blob = " ".join(str(v.value) for key in RESOLUTION
                    for v in _materialization(resolved["result"], key).materialization.metadata.values())
    assert not any(iin in blob for iin in truth.iin[:2000])
    assert not any(f" {n} " in blob for n in set(truth.last_name))


# ------------------------------------------------------------------ the library on hand-made cases
def _iin(date: str, sex: str, serial: int) -> str:
    return str(make_iins(np.array([date], dtype="datetime64[D]"), np.array([sex]), np.array([serial]))[0])


A = _iin("1971-03-14", "M", 4711)
B = _iin("1971-03-14", "M", 4712)  # A's twin brother
C = _iin("1980-01-01", "M", 3333)
D = _iin("1992-06-30", "M", 5555)
E = _iin("1985-09-21", "F", 6161)
F = _iin("2009-02-11", "F", 7272)  # E's daughter
G = _iin("1955-05-05", "M", 8383)
BAD_A = A[:9] + str((int(A[9]) + 3) % 10) + A[10:]
assert not valid_iin_mask(np.array([BAD_A]))[0]

CASES = pd.DataFrame([
    # case, person, iin, last, first, patronymic, full name, birth date, sex
    ("a-gbd", "A", A, "Тілеуқабылов", "Нұрәділ", "Серікұлы", None, "1971-03-14", "M"),
    ("a-folded", "A", A, "Тилеукабылов", "Нурадил", "Серикулы", None, "1971-03-14", None),
    ("a-latin", "A", None, "Tileukabylov", "Nuradil", "Serikuly", None, "1971-03-14", None),
    ("a-swapped", "A", A, "Нұрәділ", "Тілеуқабылов", "Серікұлы", None, "1971-03-14", "M"),
    ("a-bad-check", "A", BAD_A, "Тілеуқабылов", "Нұрәділ", None, None, "1971-03-14", None),
    ("a-russian-patronymic", "A", None, None, None, None, "Тилеукабылов Нурадил Серикович", "1971-03-14", None),
    ("b-gbd", "B", B, "Тілеуқабылов", "Бекжан", "Серікұлы", None, "1971-03-14", "M"),
    ("b-relative-iin", "B", A, "Тілеуқабылов", "Бекжан", "Серікұлы", None, "1971-03-14", "M"),
    ("c-gbd", "C", C, "Жолдасбеков", "Әміржан", "Қайратұлы", None, "1980-01-01", "M"),
    ("c-other", "C", C, None, None, None, "Жолдасбеков Әміржан Қайратұлы", "1980-01-01", None),
    ("d-gbd", "D", D, "Жолдасбеков", "Әміржан", "Қайратұлы", None, "1992-06-30", "M"),
    ("d-other", "D", D, "Жолдасбеков", "Әміржан", "Қайратович", None, "1992-06-30", None),
    ("name-only", "?", None, None, None, None, "Жолдасбеков Әміржан Қайратұлы", None, None),
    ("e-gbd", "E", E, "Сейтқалиева", "Гүлназ", "Бекқызы", None, "1985-09-21", "F"),
    ("e-iin-only", "E", E, None, None, None, None, None, None),  # a registry that keeps the IIN alone
    ("f-borrowed-iin", "F", E, "Сейтқалиева", "Айгерім", "Бекқызы", None, "2009-02-11", "F"),  # E's daughter
    ("f-gbd", "F", F, "Сейтқалиева", "Айгерім", "Бекқызы", None, "2009-02-11", "F"),
    ("g-gbd", "G", G, "Мұхамеджанов", "Бақытжан", "Әбенұлы", None, "1955-05-05", "M"),
    ("g-no-iin", "G", None, "Мұхамеджанов", "Бақытжан", None, None, "1955-05-05", None),  # born before 1970
], columns=["case", "person", "iin", "last_name", "first_name", "patronymic", "full_name", "birth_date", "sex"])


@pytest.fixture(scope="module")
def mixed(resolved):
    mentions = resolved["lake"].read("resolution", "person_mentions").to_pandas()
    cases = CASES.assign(birth_date=pd.to_datetime(CASES.birth_date).dt.date)
    frame = pd.concat([mentions, cases], ignore_index=True)
    result = link(frame, MENTION_COLUMNS, national_id="iin")
    cluster = pd.Series(result.cluster[len(mentions):], index=CASES.case.to_numpy())
    return frame, result, cluster


def test_one_person_across_alphabets_swaps_typos_and_patronymic_forms(mixed):
    _, _, cluster = mixed
    a = [c for c in CASES.case if c.startswith("a-")]
    assert cluster[a].nunique() == 1, cluster[a]


def test_twins_and_a_copied_iin_stay_apart(mixed):
    _, _, cluster = mixed
    assert cluster["b-gbd"] == cluster["b-relative-iin"]
    assert cluster["b-gbd"] != cluster["a-gbd"]


def test_a_record_with_only_an_iin_joins_its_person_and_a_borrowed_iin_does_not(mixed):
    _, _, cluster = mixed
    assert cluster["e-iin-only"] == cluster["e-gbd"]
    assert cluster["f-borrowed-iin"] != cluster["e-gbd"]
    # the borrowed IIN encodes another birth date: it is nobody's evidence, the name and the
    # birth date find the daughter
    assert cluster["f-borrowed-iin"] == cluster["f-gbd"]


def test_a_record_born_before_1970_is_blocked_on_its_birth_date(mixed):
    # no IIN and no patronymic: only the passes on the birth date reach it
    _, _, cluster = mixed
    assert cluster["g-no-iin"] == cluster["g-gbd"]


def test_an_iin_encoding_another_birth_date_is_no_evidence_either_way(mixed):
    frame, result, _ = mixed
    first_case = len(frame) - len(CASES)
    sig = dict(zip(CASES.case, result.signature[first_case:]))
    pairs = result.pairs.set_index(["signature_a", "signature_b"])

    def pair(a: str, b: str) -> pd.Series:
        x, y = sorted((sig[a], sig[b]))
        return pairs.loc[(x, y)]

    # the daughter's record with her mother's IIN: compared as if it had none, and linked
    assert pair("f-borrowed-iin", "f-gbd").level_national_id == -1
    assert pair("f-borrowed-iin", "f-gbd").probability >= 0.5
    # a twin's IIN encodes the same birth date: still compared, a disagreement
    assert pair("b-relative-iin", "b-gbd").level_national_id == 0


def test_the_national_id_weight_keeps_pace_with_the_country():
    """A country k times larger has k times the mistyped or borrowed ids but k² pairs, and a
    prior k times smaller: the weight of sharing an id must grow by log2(k), or records holding
    only an id stop linking at national size (as they did at 5M persons)."""
    from family_pipeline.resolution.linker import _exact_u

    weights = []
    for k in (1, 10, 100):
        model = FellegiSunter(levels={"national_id": 3})
        model.estimate_u({"national_id": np.zeros(1000, np.int8)},
                         _exact_u({"national_id": (7.5e5 * k, (4.2e5 * k) ** 2 / 2)}, counted={"national_id": 6.4e3 * k}))
        model.m["national_id"] = [0.01, 0.01, 0.03, 0.95]
        weights.append(float(np.log2(model.m["national_id"][3] / model.u["national_id"][3])))
    assert np.diff(weights) == pytest.approx([np.log2(10)] * 2, abs=1e-6)
    assert weights[-1] > 30  # no floor caps it


def test_namesakes_are_never_glued_by_a_record_with_only_a_name(mixed):
    _, _, cluster = mixed
    assert cluster["c-gbd"] == cluster["c-other"]
    assert cluster["d-gbd"] == cluster["d-other"]
    assert cluster["c-gbd"] != cluster["d-gbd"]
    assert not (cluster["name-only"] == cluster["c-gbd"] and cluster["name-only"] == cluster["d-gbd"])


def test_reusing_the_fitted_model_gives_the_same_persons(mixed):
    frame, result, _ = mixed
    again = link(frame, MENTION_COLUMNS, national_id="iin", model=FellegiSunter.from_dict(result.model.to_dict()))
    assert np.array_equal(again.cluster, result.cluster)
    assert result.model.to_dict()["weights"]["first_name"][0] < 0 < result.model.to_dict()["weights"]["first_name"][-1]


def test_linking_is_deterministic(mixed):
    frame, result, _ = mixed
    assert np.array_equal(link(frame, MENTION_COLUMNS, national_id="iin").cluster, result.cluster)


def test_any_column_names_and_any_id_format(resolved):
    """The linker outside the pipeline: other column names, an id it cannot check, no patronymic."""
    lake = resolved["lake"]
    mentions = lake.read("resolution", "person_mentions").to_pandas()
    frame = pd.DataFrame({
        "doc_no": "ID-" + mentions.iin.fillna("").str[::-1],
        "surname": mentions.last_name, "given": mentions.first_name, "fio": mentions.full_name,
        "dob": mentions.birth_date,
    })
    frame.loc[mentions.iin.isna(), "doc_no"] = None
    result = link(frame, {"national_id": "doc_no", "last_name": "surname", "first_name": "given",
                          "full_name": "fio", "birth_date": "dob"})
    xref = mentions[["registry", "record_id", "group"]].assign(person_id=result.cluster)
    truth = pq.read_table(lake.truth("mentions")).to_pandas()
    accuracy = linkage_accuracy(xref, truth)
    assert accuracy["pairwise"]["f1"] >= 0.98, accuracy


def test_bad_mapping_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown mapping key"):
        link(pd.DataFrame({"x": [1]}), {"passport": "x"})
    with pytest.raises(KeyError, match="not in the records"):
        link(pd.DataFrame({"x": [1]}), {"last_name": "surname"})


# ------------------------------------------------------------------ the pieces that make it scale
def _reference_rebuild(labels, broken, ki, kj, kp, fits):
    """The rebuild link by link in plain Python: strongest link first, two groups merge only when
    every member of one fits every member of the other."""
    parent = {int(x): int(x) for x in np.flatnonzero(np.isin(labels, sorted(broken)))}
    members = {x: [x] for x in parent}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for e in np.lexsort((kj, ki, -kp)):
        if labels[ki[e]] not in broken:
            continue
        a, b = find(int(ki[e])), find(int(kj[e]))
        if a == b or not all(fits[min(x, y), max(x, y)] for x in members[a] for y in members[b]):
            continue
        parent[b] = a
        members[a].extend(members.pop(b))
    return {x: find(x) for x in parent}


@pytest.mark.parametrize("matrix_width", [512, 8])
def test_vectorised_rebuild_takes_the_same_links_as_the_link_by_link_rule(matrix_width, monkeypatch):
    """Both ways of rebuilding: components on matrices, and (``matrix_width`` 8: most of these
    components are wider) the link-by-link rebuild of a component too wide for one."""
    from family_pipeline.resolution import clustering
    from family_pipeline.resolution.clustering import _rebuild

    monkeypatch.setattr(clustering, "MATRIX_WIDTH", matrix_width)

    rng = np.random.default_rng(5)
    sizes = rng.integers(2, 40, 300)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    n = len(labels)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    ki, kj = [], []
    for s, size in zip(starts, sizes):  # a spanning chain plus random extra links per component
        ki += list(range(s, s + size - 1)); kj += list(range(s + 1, s + size))
        extra = rng.integers(0, size, (2, size))
        ki += list(s + extra.min(0)); kj += list(s + extra.max(0))
    ki, kj = np.array(ki), np.array(kj)
    keep = ki != kj
    ki, kj = ki[keep], kj[keep]
    kp = np.round(rng.random(len(ki)), 2)  # ties on purpose
    fits = rng.random((n, n)) > 0.1

    def compatible(a, b):
        return fits[np.minimum(a, b), np.maximum(a, b)]

    broken = np.arange(0, len(sizes), 2)
    group, refused = _rebuild(n, labels, broken, ki, kj, kp, compatible)
    reference = _reference_rebuild(labels, set(broken.tolist()), ki, kj, kp, fits)
    nodes = np.array(sorted(reference))
    assert (group[nodes] >= 0).all() and (group[np.setdiff1d(np.arange(n), nodes)] == -1).all()
    ours = pd.Series(group[nodes]).groupby(group[nodes]).ngroup().to_numpy()
    theirs = pd.Series([reference[x] for x in nodes]).groupby([reference[x] for x in nodes]).ngroup().to_numpy()
    assert (pd.crosstab(ours, theirs).gt(0).sum(axis=1) == 1).all()  # the same partition
    assert len(np.unique(ours)) == len(np.unique(theirs))
    assert refused > 0
    # the other way of rebuilding refuses the same links and makes the same groups
    monkeypatch.setattr(clustering, "MATRIX_WIDTH", 512 if matrix_width != 512 else 8)
    other_group, other_refused = _rebuild(n, labels, broken, ki, kj, kp, compatible)
    assert other_refused == refused
    assert pd.crosstab(group[nodes], other_group[nodes]).gt(0).sum(axis=1).eq(1).all()


@pytest.mark.parametrize("edge_slice", [1 << 22, 7])
def test_components_are_scipy_s_connected_components_numbered_by_smallest_node(edge_slice, monkeypatch):
    """The linker's components (hooking and pointer jumping) are scipy's, node for node: random
    graphs with self-loops and repeated edges, and long chains in random order (the many
    rounds a national run's chains of bad links would take); the edges in one slice, and in
    slices of seven (a root hooked in an earlier slice of the round waits for the next)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from family_pipeline.resolution import clustering
    from family_pipeline.resolution.clustering import components

    monkeypatch.setattr(clustering, "EDGE_SLICE", edge_slice)

    rng = np.random.default_rng(11)
    for case in range(60):
        n = int(rng.integers(1, 3_000))
        if case % 3:
            a, b = rng.integers(0, n, (2, int(rng.integers(0, 2 * n)))).astype(np.int32)
        else:
            chain = rng.permutation(n).astype(np.int32)
            a, b = chain[:-1], chain[1:]
        _, labels = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
        smallest = np.full(labels.max() + 1, n)
        np.minimum.at(smallest, labels, np.arange(n))
        assert np.array_equal(components(n, a, b), smallest[labels]), case


def test_integer_keys_match_a_pandas_groupby():
    from family_pipeline.resolution.blocking import combine_keys, dense_codes, group_order, sorted_unique

    rng = np.random.default_rng(3)
    n = 50_000
    columns = [rng.integers(-1, 30, n), rng.integers(0, 2**40, n) % 1000,
               np.where(rng.random(n) < 0.1, np.iinfo(np.int64).min, rng.integers(0, 40_000, n))]
    frame = pd.DataFrame({str(k): c for k, c in enumerate(columns)})
    expected = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    assert np.array_equal(dense_codes(columns), expected)
    combined = combine_keys(columns[:2])
    assert (combined[columns[0] < 0] == -1).all()
    assert np.array_equal(group_order(columns[1]), np.argsort(columns[1], kind="stable"))
    assert np.array_equal(sorted_unique(columns[1]), np.unique(columns[1]))


def test_candidate_pairs_are_every_pass_s_pairs_once_and_in_int32(monkeypatch):
    from family_pipeline.resolution import blocking

    rng = np.random.default_rng(5)
    n = 3_000
    table = {"a": rng.integers(-1, 400, n), "b": rng.integers(-1, 5, n), "id": rng.integers(-1, 900, n)}
    passes = [blocking.BlockingPass("a", ("a",), cap=12),
              blocking.BlockingPass("ab", ("a", "b"), only_when_missing=("id",)),
              blocking.BlockingPass("b_one_per_id", ("b",), cap=2_000, one_per="id")]
    frame = pd.DataFrame(table).rename_axis("row").reset_index()

    def brute(p: blocking.BlockingPass) -> set[tuple[int, int]]:
        rows = frame[(frame[list(p.columns)] >= 0).all(axis=1)]
        if p.one_per:  # the first row of each value in its block; rows without one all stay
            rows = rows[(rows[p.one_per] < 0) | ~rows.duplicated(list(p.columns) + [p.one_per])]
        rows = rows[rows.groupby(list(p.columns)).row.transform("size") <= p.cap]
        both = rows.merge(rows, on=list(p.columns))
        both = both[both.row_x < both.row_y]
        if p.only_when_missing:
            both = both[(both[[f"{f}_{s}" for f in p.only_when_missing for s in "xy"]] < 0).any(axis=1)]
        return set(zip(both.row_x.tolist(), both.row_y.tolist()))

    expected = sorted(set().union(*(brute(p) for p in passes)))
    monkeypatch.setattr(blocking, "_UNPACK_SLICE", 7)  # unpacked in many slices, one ragged
    i, j, stats = blocking.candidate_pairs(table, passes)
    assert i.dtype == j.dtype == np.int32
    assert list(zip(i.tolist(), j.tolist())) == expected
    assert stats["distinct_pairs"] == len(expected) and len(expected) % 7
    assert all(stats[p.name]["pairs"] == len(brute(p)) for p in passes)


def test_a_run_reports_time_and_memory_per_stage(mixed):
    _, result, _ = mixed
    profile = result.stats["profile"]
    assert list(profile) == ["prepare", "blocking", "compare", "estimate", "score", "cluster", "output"]
    assert all(v["seconds"] >= 0 and v["cpu_seconds"] >= 0 and v["peak_rss_mb"] > 0 for v in profile.values())


def test_a_run_tells_each_phase_as_it_ends(mixed):
    frame, first, _ = mixed
    told = []
    result = link(frame, MENTION_COLUMNS, national_id="iin", model=first.model,
                  progress=lambda phase, figures: told.append((phase, dict(figures))))
    assert [phase for phase, _ in told] == ["prepare", "blocking", "compare", "estimate", "score", "cluster", "output"]
    assert dict(told) == result.stats["profile"]
    assert np.array_equal(result.cluster, first.cluster)



def test_the_candidate_pairs_wait_on_disk_while_the_clusters_are_made(mixed, tmp_path, monkeypatch):
    frame, first, _ = mixed
    seen = {}
    clustering = linker.cluster_links

    def spy(n, ki, kj, kp, support, compatible):
        (spill,) = tmp_path.iterdir()
        seen["files"] = {path.name: np.load(path, mmap_mode="r").shape for path in spill.iterdir()}
        seen["links"] = len(ki)
        return clustering(n, ki, kj, kp, support, compatible)

    monkeypatch.setattr(linker, "cluster_links", spy)
    result = link(frame, MENTION_COLUMNS, national_id="iin", model=first.model, spill_dir=str(tmp_path))
    n_pairs = len(result.pairs)
    assert seen["files"] == {f"{name}.npy": (n_pairs,)
                             for name in ["i", "j", "p", *(f"level_{f}" for f in FIELDS)]}
    assert 0 < seen["links"] < n_pairs  # the clustering was handed the links alone
    assert not any(tmp_path.iterdir())  # and the pairs came back: nothing is left on disk
    assert np.array_equal(result.cluster, first.cluster)
    assert np.array_equal(result.probability, first.probability)
    pd.testing.assert_frame_equal(result.pairs, first.pairs)

# ------------------------------------------------------------------ national size: columns on demand
def test_mentions_streamed_per_registry_are_the_national_table(resolved, tmp_path):
    from family_pipeline.catalog import catalog
    from family_pipeline.resolution.mentions import person_mentions, write_person_mentions

    lake = resolved["lake"]
    table, counts = person_mentions(lake, catalog())
    assert write_person_mentions(lake, catalog(), tmp_path / "m.parquet") == counts
    assert pq.read_table(tmp_path / "m.parquet").equals(table)


def test_mentions_are_read_a_row_group_at_a_time_in_the_order_of_whole_registries(resolved, tmp_path, monkeypatch):
    """Registries of many row groups give the mentions their whole tables give, group after
    group, in row groups of the set size that start at each registry."""
    from family_pipeline.catalog import catalog
    from family_pipeline.lib.lake import Lake
    from family_pipeline.resolution import mentions

    source, lake = resolved["lake"], Lake(tmp_path / "country")
    expected, counts = [], {}
    for spec in catalog().registries:
        if spec.person_groups and source.table("registries", spec.code).exists():
            whole = source.read("registries", spec.code)
            target = lake.table("registries", spec.code)
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(whole, target, row_group_size=700)
            expected.append(mentions.registry_mentions(spec, whole))
            counts[spec.code] = expected[-1].num_rows
    assert any(pq.ParquetFile(lake.table("registries", c)).num_row_groups > 3 for c in counts)
    monkeypatch.setattr(mentions, "ROW_GROUP", 1000)
    assert mentions.write_person_mentions(lake, catalog(), tmp_path / "m.parquet") == counts
    written = pq.ParquetFile(tmp_path / "m.parquet")
    assert written.read().equals(pa.concat_tables(expected))
    sizes = [written.metadata.row_group(i).num_rows for i in range(written.num_row_groups)]
    assert max(sizes) == 1000
    starts = np.cumsum([0, *sizes])
    # a registry starts a row group (an empty one: a row group of none)
    assert set(np.cumsum([0, *counts.values()])) <= set(starts)
    expected_sizes = [k for n in counts.values()
                      for k in [1000] * (n // 1000) + ([n % 1000] if n % 1000 or not n else [])]
    assert sizes == expected_sizes


def test_the_linker_and_golden_records_read_columns_one_at_a_time_alike(resolved):
    """A ParquetColumns (each column read when asked, the registry and group as Parquet's
    dictionaries or as text), an Arrow table and a DataFrame give the same persons, encoded in
    one chunk or several."""
    from family_pipeline.lib.parquet_columns import ParquetColumns
    from family_pipeline.resolution.golden import golden_records, person_ids

    lake = resolved["lake"]
    path = lake.table("resolution", "person_mentions")
    lazy, table = ParquetColumns(path), pq.read_table(path)
    frame = table.to_pandas()
    by_column = link(lazy, MENTION_COLUMNS, national_id="iin")
    by_frame = link(frame, MENTION_COLUMNS, national_id="iin", chunk_rows=7_001)  # encoded in chunks
    assert np.array_equal(by_column.cluster, by_frame.cluster)
    assert np.array_equal(by_column.probability, by_frame.probability)
    pd.testing.assert_frame_equal(by_column.pairs, by_frame.pairs)
    assert np.array_equal(link(table, MENTION_COLUMNS, national_id="iin").cluster, by_frame.cluster)
    pid = person_ids(lazy, by_column.cluster)
    assert np.array_equal(pid, person_ids(frame, by_frame.cluster))
    pd.testing.assert_frame_equal(golden_records(lazy, pid), golden_records(frame, pid))
    encoded = ParquetColumns(path, encoded=("registry", "group"))
    assert pa.types.is_dictionary(encoded.column("registry").type)
    assert np.array_equal(person_ids(encoded, by_column.cluster), pid)
    pd.testing.assert_frame_equal(golden_records(encoded, pid), golden_records(frame, pid))


def _same_encoding(a, b) -> None:
    """The same signatures, standing for the same values (a name's code depends on the order the
    chunks met the names in, its key does not)."""
    assert np.array_equal(a.row_signature, b.row_signature)
    assert np.array_equal(a.support, b.support) and np.array_equal(a.first_row, b.first_row)
    assert a.table.keys() == b.table.keys() and a.vocabulary.keys() == b.vocabulary.keys()
    vocabulary = {"last_name": "name", "first_name": "name", "patronymic": "patronymic"}
    for field, codes in a.table.items():
        if field in vocabulary:
            def keys(enc):
                return np.append(enc.vocabulary[vocabulary[field]], None)[enc.table[field]]
            assert np.array_equal(keys(a), keys(b)), field
        else:
            assert np.array_equal(codes, b.table[field]), field
    for name in ("name", "patronymic"):
        assert sorted(a.vocabulary[name]) == sorted(b.vocabulary[name])
    for name in ("national_id", "national_id_checked"):
        assert np.array_equal(a.vocabulary[name], b.vocabulary[name])


def test_mentions_encoded_a_chunk_at_a_time_are_encoded_as_at_once(resolved, monkeypatch):
    """Signatures and vocabularies are numbered in order of first appearance across chunks:
    chunks of any size give what one chunk gives, from Parquet or a DataFrame, and a collision
    of the signatures' hashes numbers them again with another hash, to the same result."""
    from family_pipeline.lib.parquet_columns import ParquetColumns
    from family_pipeline.resolution import encoding

    path = resolved["lake"].table("resolution", "person_mentions")
    lazy = ParquetColumns(path)
    whole = encoding.encode(lazy, MENTION_COLUMNS, "iin", chunk_rows=len(lazy))
    assert len(whole.row_signature) == len(lazy) > 10_000
    assert 0 < len(whole.support) < len(lazy) and whole.support.sum() == len(lazy)
    # each signature's first row holds its codes
    assert np.array_equal(whole.row_signature[whole.first_row], np.arange(len(whole.support)))
    for rows in (4_999, 20_000):
        _same_encoding(encoding.encode(lazy, MENTION_COLUMNS, "iin", chunk_rows=rows), whole)
    table = pq.read_table(path)
    _same_encoding(encoding.encode(table.to_pandas(), MENTION_COLUMNS, "iin", chunk_rows=7_001), whole)
    head = table.slice(0, 3_000)  # a row at a time
    _same_encoding(encoding.encode(head, MENTION_COLUMNS, "iin", chunk_rows=1),
                   encoding.encode(head, MENTION_COLUMNS, "iin", chunk_rows=3_000))
    hashes = encoding.tuple_hashes
    salts = []

    def colliding(columns, salt=0):
        salts.append(salt)
        return hashes(columns, salt) % np.uint64(1_000) if salt == 0 else hashes(columns, salt)

    monkeypatch.setattr(encoding, "tuple_hashes", colliding)
    _same_encoding(encoding.encode(lazy, MENTION_COLUMNS, "iin", chunk_rows=20_000), whole)
    assert 0 in salts and 1 in salts


def test_chunks_meet_on_normalised_values():
    """Spellings of one name, an IIN with spaces and a date met in different chunks are one
    signature; a borrowed IIN (another birth date) is no IIN of the record's own."""
    from family_pipeline.resolution import encoding

    iin = make_iins(np.array(["1990-04-02"], "datetime64[D]"), np.array(["F"]), np.array([17]))[0]
    parent = make_iins(np.array(["1961-01-30"], "datetime64[D]"), np.array(["M"]), np.array([3]))[0]
    frame = pd.DataFrame({
        "iin": [iin, None, f"{iin[:6]} {iin[6:]}", parent, iin],
        "last_name": ["Әбенова", "Петров", "Абенова", "Абенова", None],
        "first_name": ["Айгерім", "Иван", "Айгерим", "Айгерім", None],
        "full_name": [None, None, None, None, "Абенова Айгерим Маратқызы"],
        "birth_date": pd.to_datetime(["1990-04-02", "1980-01-01", "1990-04-02", "1990-04-02", "1990-04-02"]).date,
    })
    columns = {"national_id": "iin", "last_name": "last_name", "first_name": "first_name", "full_name": "full_name",
               "birth_date": "birth_date"}
    for rows in (1, 2, 5):
        enc = encoding.encode(frame, columns, "iin", chunk_rows=rows)
        sig = enc.row_signature.tolist()
        assert sig[:4] == [0, 1, 0, 2]  # the parent's IIN on row 3 is not the record's own
        assert enc.table["national_id"][2] == -1 and enc.table["sex"][0] == 1  # the IIN's sex fills in
        assert sig[4] == 3  # the full name gives the same names, plus a patronymic
        assert enc.table["last_name"][3] == enc.table["last_name"][0]
        assert enc.vocabulary["national_id"].tolist() == [iin, parent]
        assert enc.vocabulary["national_id_checked"].tolist() == [True, True]
        assert enc.first_row.tolist() == [0, 1, 3, 4]


def test_linkage_accuracy_counts_pairs_of_mentions():
    keys = {"registry": ["r"] * 5, "record_id": list("abcde"), "group": ["s"] * 5}
    xref = pd.DataFrame({**keys, "person_id": [10, 10, 10, 20, 30], "signature": [0, 0, 1, 2, 3]})
    # truth: a, b, d one person; c another; e unknown to the truth (-1); f never seen
    truth = pd.DataFrame({"registry": ["r"] * 6, "record_id": list("fedcba"), "group": ["s"] * 6,
                          "person_id": [9, -1, 1, 2, 1, 1]})
    acc = linkage_accuracy(xref, truth, pd.DataFrame({"signature_a": [0], "signature_b": [2]}))
    # predicted pairs: ab ac bc (3); true pairs: ab ad bd (3); both: ab (1)
    assert acc["mentions"] == 4 and acc["true_persons"] == 2 and acc["predicted_persons"] == 2
    assert acc["pairwise"]["precision"] == round(1 / 3, 5) and acc["pairwise"]["recall"] == round(1 / 3, 5)
    assert acc["clusters"]["persons_recovered_exactly"] == 0.0 and acc["clusters"]["predicted_pure"] == 0.5
    # signatures 0 (a, b) and 2 (d) are one true person and were blocked together
    assert acc["blocking"]["true_signature_pairs"] == 1 and acc["blocking"]["in_candidates"] == 1


def test_namesakes_count_persons_sharing_a_full_name_nationally_and_in_their_region():
    persons = pd.DataFrame({
        "last_name": ["Ахметов", "Ахметов", "Ахметов", "Ахметов", "Омарова", "Омарова"],
        "first_name": ["Ерлан", "Ерлан", "Ерлан", "Ерлан", "Дана", "Дана"],
        "patronymic": ["Маратович", "Маратович", "Маратович", None, "Асқарқызы", None],
        "region": ["KZ-11", "KZ-11", "KZ-75", "KZ-11", "KZ-75", "KZ-75"],
    })
    # three Ерлан Маратович Ахметов (two in KZ-11), one without a patronymic, two Дана Омарова
    # told apart by the patronymic one of them lacks
    out = namesakes(persons)
    assert out["persons"] == 6
    assert out["sharing_full_name"] == 0.5 and out["sharing_full_name_in_region"] == round(2 / 6, 5)
    assert out["namesakes_per_person"] == 1.0  # each of the three has two: 6 over 6 persons


def test_matching_rows_per_slice_equals_one_packed_sort():
    """Record ids matched slice by slice (registry, group) find the rows one packed sort finds:
    slices in or out of order, ids in or out of order, missing ids, a null id."""
    import pyarrow as pa

    from family_pipeline.evaluation.resolution import _matching_rows_packed, matching_rows

    rng = np.random.default_rng(7)
    n = 3000
    right = pa.table({"registry": pa.array(rng.choice(["a", "b", "c", None], n)),
                      "record_id": pa.array([None if i == 5 else f"R{i}" for i in range(n)]),
                      "group": pa.array(rng.choice(["owner", "subject"], n))})
    ordered = right.sort_by([("registry", "ascending"), ("group", "ascending")])
    picks = [pa.table({"registry": pa.array(["d", "a"]), "record_id": pa.array(["R1", None]),
                       "group": pa.array(["owner", "owner"])})]
    for r in (right, ordered):
        picks.append(r)
        picks.append(r.take(pa.array(rng.permutation(n)[: n // 2])))
    for left in picks:
        for r in (right, ordered):
            for keys in (["registry", "record_id", "group"], ["registry", "record_id"]):
                assert matching_rows(left, r, keys).tolist() == _matching_rows_packed(left, r, keys).tolist()


def test_dense_codes_number_distinct_tuples_in_order_of_first_appearance(monkeypatch):
    """Hashed tuples give exactly the codes the sorts give, on wide and narrow columns with
    missing values; when two distinct tuples share a hash the sorts decide."""
    from family_pipeline.resolution import blocking

    rng = np.random.default_rng(7)
    for n, spans in ((1, (3,)), (500, (4, 2)), (200_000, (50, 10**9, 3, 40_000, 2, 20, 7))):
        columns = [rng.integers(-1, s, n) for s in spans]
        codes = blocking.dense_codes(columns)
        assert np.array_equal(codes, blocking._sorted_dense_codes(columns))
        tuples = list(zip(*(c.tolist() for c in columns)))
        seen: dict = {}
        assert codes.tolist() == [seen.setdefault(t, len(seen)) for t in tuples]
    columns = [np.array([5, 1, 5, 2]), np.array([0, 0, 0, 1])]
    monkeypatch.setattr(blocking.pd, "factorize", lambda h, use_na_sentinel=False: (np.zeros(len(h), np.int64), h[:1]))
    assert blocking._hashed_codes(columns) is None  # every tuple "shares" one hash
    assert blocking.dense_codes(columns).tolist() == [0, 1, 0, 2]


def test_golden_records_voted_on_clusters_before_the_person_ids_are_the_same(linked):
    """The votes taken on the linker's clusters (beside the person ids, as the asset does up to
    GOLDEN_BESIDE_IDS_MENTIONS) and finished with the ids give the table voted on the ids."""
    from family_pipeline.resolution.golden import (
        cluster_person_ids,
        golden_finish,
        golden_table,
        golden_votes,
        person_ids,
    )

    mentions, cluster = linked
    by_cluster = cluster_person_ids(mentions, cluster)
    assert np.array_equal(by_cluster[cluster], person_ids(mentions, cluster))
    assert len(np.unique(by_cluster)) == cluster.max() + 1
    finished = golden_finish(golden_votes(mentions, cluster, int(cluster.max()) + 1), by_cluster)
    assert finished.equals(golden_table(mentions, by_cluster[cluster]))
    assert finished.column("iin_disputed").to_numpy().any()  # the IIN dispute ran on the finished order


def test_person_ids_made_a_slice_of_mentions_at_a_time_are_those_made_at_once(resolved, tmp_path):
    """PersonIds over slices of a mentions file whose row groups do not line up with the slices
    gives every cluster the id ``cluster_person_ids`` gives reading all mentions at once."""
    from family_pipeline.lib.parquet_columns import ParquetColumns
    from family_pipeline.resolution.golden import PersonIds, cluster_person_ids

    table = resolved["lake"].read("resolution", "person_mentions")
    path = tmp_path / "uneven.parquet"
    with pq.ParquetWriter(path, table.schema) as writer:
        at = 0
        for size in (1, 333, 4_000, 57, 10_000):
            writer.write_table(table.slice(at, size), row_group_size=size)
            at += size
        writer.write_table(table.slice(at), row_group_size=50_000)
    mentions = ParquetColumns(path, encoded=("registry", "group"))
    cluster = link(mentions, MENTION_COLUMNS, national_id="iin").cluster
    at_once = cluster_person_ids(mentions, cluster)
    for rows in (4_096, 9_999):
        ids = PersonIds(cluster)
        for start, part in mentions.slices(list(PersonIds.ANCHOR_COLUMNS), rows):
            ids.add_anchors(start, part)
        ids.claim()
        for start, part in mentions.slices(list(PersonIds.KEY_COLUMNS), rows):
            ids.add_first_rows(start, part)
            # every cluster met up to the end of this slice has its id already
            met = np.unique(cluster[: start + part.num_rows])
            assert np.array_equal(ids.values[met], at_once[met])
        assert np.array_equal(ids.values, at_once)


def test_person_ids_follow_the_authority_then_the_larger_cluster():
    """A cluster takes the authority's checked IIN over a smaller one of another registry; an
    IIN two clusters claim stays with the one of more mentions; an unchecked IIN names no one."""
    from family_pipeline.lib.pseudonym import pseudonym_ints
    from family_pipeline.resolution.golden import PersonIds, cluster_person_ids

    mentions = pd.DataFrame({
        "registry": ["tax", "gbd_fl", "tax", "tax", "tax", "tax", "tax", "tax", "tax", "tax"],
        "record_id": list("abcdefghij"), "group": ["subject"] * 10,
        "iin": ["111", "222", "222", "222", "222", "999", None, "000000000009", "5", "000000000007"],
        "iin_valid": [True, True, True, True, True, False, None, True, True, True],
    })
    cluster = np.array([0, 0, 1, 1, 2, 3, 3, 0, 4, 4])
    ids = cluster_person_ids(mentions, cluster)
    iin = dict(zip(["222", "000000000007"], pseudonym_ints(["iin:222", "iin:000000000007"])))
    mention = pseudonym_ints(["mention:tax/c/subject", "mention:tax/e/subject", "mention:tax/f/subject"])
    # cluster 0: the authority's 222 over tax's 111 and 000000000009; cluster 1 (2 mentions)
    # claims 222 too and loses the tie to cluster 0 (the first); cluster 2 has 222 alone and
    # fewer mentions; cluster 4: "000000000007" is smaller text than "5"
    assert ids.tolist() == [iin["222"], mention[0], mention[1], mention[2], iin["000000000007"]]
    by_slices = PersonIds(cluster)
    for start in range(0, 10, 2):
        by_slices.add_anchors(start, pa.Table.from_pandas(mentions.iloc[start:start + 2], preserve_index=False))
    by_slices.claim()
    for start in range(0, 10, 3):
        by_slices.add_first_rows(start, pa.Table.from_pandas(mentions.iloc[start:start + 3], preserve_index=False))
    assert by_slices.values.tolist() == ids.tolist()


def test_golden_records_voted_by_ranges_of_persons_are_those_voted_at_once(linked):
    """Mentions written out by ranges of persons and voted range by range (as a national
    table is) give the golden records of voting them all at once: values, their sources, the
    counts, and IINs disputed between persons of different ranges."""
    from family_pipeline.catalog import catalog
    from family_pipeline.resolution.golden import (
        cluster_person_ids,
        folding_registries,
        golden_finish,
        golden_slices,
        golden_votes,
    )

    mentions, cluster = linked
    path = mentions.path
    n = int(cluster.max()) + 1
    ids = cluster_person_ids(mentions, cluster)
    folding = folding_registries(catalog())
    assert folding  # spellings of single-byte registries count less
    at_once = golden_finish(golden_votes(mentions, cluster, n, folding), ids)
    assert at_once.column("iin_disputed").to_numpy().any()
    for rows in (len(mentions) // 3, 25_000):
        by_ranges = golden_finish(golden_votes(mentions, cluster, n, folding, part_rows=rows), ids)
        assert by_ranges.equals(at_once)
    assert not list(path.parent.glob("golden-votes-*"))  # the ranges' files are gone
    # made a slice of persons at a time (as a national table is written): the same records,
    # IINs disputed across slices included
    slices = list(golden_slices(golden_votes(mentions, cluster, n, folding), ids, rows=1000))
    assert len(slices) == -(-n // 1000) and all(s.num_rows == 1000 for s in slices[:-1])
    assert pa.concat_tables(slices).equals(at_once)

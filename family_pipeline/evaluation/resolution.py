"""Entity resolution against the truth: pairwise and cluster accuracy, and blocking recall.

Pairs are pairs of mentions: a predicted pair is two mentions given the same person, a true pair
two mentions of the same true person. Only mentions the pipeline saw (clean rows) and that name
a real person count.

Everything runs on integer codes: the mention keys (registry, record id, reference group) are
dictionary-encoded by Arrow once over both tables and matched by one sort, and the pair counts
are sorts and bincounts of int64 arrays — a national crosswalk costs seconds, not a string join.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from family_pipeline.lib.lake import Lake
from family_pipeline.lib.parquet_columns import ParquetColumns
from family_pipeline.resolution.blocking import dense_codes
from family_pipeline.resolution.clustering import components

__all__ = ["golden_to_truth", "linkage_accuracy", "matching_rows", "namesakes", "resolution_section", "true_ids", "true_person_of"]

KEYS = ["registry", "record_id", "group"]
#: a DataFrame, an Arrow table, or anything with ``column(name)``, ``column_names`` and a length
#: (a ``ParquetColumns``: one key column in memory at a time)
Frame = pd.DataFrame | pa.Table


#: key columns with few distinct values: read from Parquet as dictionaries, no text hashed
_FEW_VALUES = ("registry", "group")


def _column(frame: Frame, name: str) -> pa.Array | pa.ChunkedArray:
    """One column as Arrow."""
    return pa.array(frame[name], from_pandas=True) if isinstance(frame, pd.DataFrame) else frame.column(name)


def _encoded(frame: Frame, name: str) -> tuple[np.ndarray, pa.Array]:
    """(code per row into the column's distinct values, -1 missing; those values)."""
    if name in _FEW_VALUES and hasattr(frame, "dictionary"):  # a ParquetColumns
        encoded = frame.dictionary(name)
    else:
        encoded = pc.dictionary_encode(_column(frame, name))
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    if not chunks:
        return np.empty(0, np.int64), pa.array([], pa.string())
    if not all(c.dictionary.equals(chunks[0].dictionary) for c in chunks):  # one dictionary for all
        chunks = [pc.dictionary_encode(pa.chunked_array([c.dictionary_decode() for c in chunks]).combine_chunks())]
    codes = np.concatenate([c.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64) for c in chunks])
    return codes, chunks[0].dictionary


def _shared_codes(left: Frame, right: Frame, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes of both tables' values of a column in one numbering (-1 missing); and its size."""
    a, left_values = _encoded(left, name)
    b, right_values = _encoded(right, name)
    if right_values.type != left_values.type:
        right_values = right_values.cast(left_values.type)
    at = pc.index_in(right_values, value_set=left_values).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    new = at < 0  # values only the right side has: numbered after the left's
    at[new] = len(left_values) + np.arange(int(new.sum()))
    return a, np.append(at, -1)[b], len(left_values) + int(new.sum())


def _ints(frame: Frame, name: str) -> np.ndarray:
    col = frame[name] if isinstance(frame, pd.DataFrame) else frame.column(name)
    if isinstance(col, (pa.ChunkedArray, pa.Array)):
        return col.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return np.asarray(col, np.int64)


def matching_rows(left: Frame, right: Frame, keys: list[str] = KEYS) -> np.ndarray:
    """For each row of ``left``, the row of ``right`` with the same ``keys`` (text columns), -1
    where there is none (keys are unique in ``right``). The few-valued
    keys (registry, group) number both sides' slices through the Parquet dictionaries; within a
    slice, the one many-valued key (the record id) is matched by a hash table of that slice only
    (or taken row for row when both sides list the same ids in the same order), so no national
    table of record ids is ever hashed or sorted."""
    n = len(left)
    if n == 0 or len(right) == 0:
        return np.full(n, -1, np.int64)
    few = [k for k in keys if k in _FEW_VALUES]
    many = [k for k in keys if k not in _FEW_VALUES]
    if len(many) != 1:
        return _matching_rows_packed(left, right, keys)
    left_slice = np.zeros(n, np.int64)
    right_slice = np.zeros(len(right), np.int64)
    for name in few:
        a, b, size = _shared_codes(left, right, name)
        left_slice, right_slice = left_slice * (size + 1) + (a + 1), right_slice * (size + 1) + (b + 1)
    left_ids, right_ids = _column(left, many[0]), _column(right, many[0])
    if right_ids.type != left_ids.type:
        right_ids = right_ids.cast(left_ids.type)
    out = np.full(n, -1, np.int64)
    left_rows, right_rows = _slices(left_slice), _slices(right_slice)
    for code, rows in left_rows.items():
        found = right_rows.get(code)
        if found is None:
            continue
        ids = _take(left_ids, rows)
        values = _take(right_ids, found)
        if len(ids) == len(values) and ids.equals(values):  # the same ids in the same order
            out[rows] = _index(found)
            continue
        at = pc.index_in(ids, value_set=values).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        out[rows] = np.where(at >= 0, _index(found)[np.maximum(at, 0)], -1)
    return out


def _slices(codes: np.ndarray) -> dict[int, slice | np.ndarray]:
    """Rows of each code: a ``slice`` where the code's rows are contiguous, else their indices."""
    if not len(codes):
        return {}
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    run_codes = codes[starts]
    ends = np.r_[starts[1:], len(codes)]
    out: dict[int, slice | np.ndarray] = {}
    if len(np.unique(run_codes)) == len(run_codes):  # every code in one run
        for c, s, e in zip(run_codes.tolist(), starts.tolist(), ends.tolist()):
            out[c] = slice(s, e)
        return out
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    bounds = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1], True])
    for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        out[int(sorted_codes[s])] = order[s:e]
    return out


def _take(column: pa.Array | pa.ChunkedArray, rows: slice | np.ndarray) -> pa.Array:
    part = column.slice(rows.start, rows.stop - rows.start) if isinstance(rows, slice) else column.take(pa.array(rows))
    return part.combine_chunks() if isinstance(part, pa.ChunkedArray) else part


def _index(rows: slice | np.ndarray) -> np.ndarray:
    return np.arange(rows.start, rows.stop, dtype=np.int64) if isinstance(rows, slice) else rows


def _matching_rows_packed(left: Frame, right: Frame, keys: list[str]) -> np.ndarray:
    """``matching_rows`` for any keys: one Arrow dictionary over both sides per key column, one
    packed int64 key per row, one sort."""
    left_key = right_key = None
    for name in keys:
        a, b, size = _shared_codes(left, right, name)
        if left_key is None:
            left_key, right_key = a, b
        else:
            left_key, right_key = left_key * (size + 1) + (a + 1), right_key * (size + 1) + (b + 1)
    order = np.argsort(right_key, kind="stable")
    sorted_key = right_key[order]
    del right_key
    pos = np.minimum(np.searchsorted(sorted_key, left_key), len(sorted_key) - 1)
    return np.where(sorted_key[pos] == left_key, order[pos], -1)


def true_ids(xref: Frame, truth: Frame) -> np.ndarray:
    """The true person id of each crosswalk row (matched on registry, record id and group), -1
    where the truth does not know the mention or it names no real person."""
    row = matching_rows(xref, truth)
    if not (row >= 0).any():
        return np.full(len(row), -1, np.int64)
    out = np.where(row >= 0, _ints(truth, "person_id")[np.maximum(row, 0)], -1)
    return np.where(out >= 0, out, -1)


def _dense(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..k-1 of int64 values in value order; and the distinct values (``np.unique`` with
    its inverse, by a hash table and a sort of the distinct values only)."""
    codes, uniq = pd.factorize(np.asarray(values, np.int64))
    uniq = np.asarray(uniq, np.int64)
    order = np.argsort(uniq)
    rank = np.empty(len(uniq), np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[codes], uniq[order]


def _first_by_majority(owner: np.ndarray, count: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Index of each owner's row with the largest count (ties: the smallest value), owners in
    ascending order; ``owner``, ``count`` and ``value`` non-negative integers."""
    if not len(owner):
        return np.empty(0, np.int64)
    top = int(count.max())
    widths = [int(owner.max()).bit_length(), top.bit_length(), int(value.max()).bit_length()]
    if sum(widths) <= 63:  # one packed key, one sort
        key = (owner.astype(np.int64) << (widths[1] + widths[2])) | ((top - count).astype(np.int64) << widths[2]) | value
        order = np.argsort(key)
    else:
        order = np.lexsort((value, -count, owner))
    return order[np.r_[True, owner[order][1:] != owner[order][:-1]]]


def _pair_count(sizes: np.ndarray) -> int:
    sizes = sizes.astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def golden_to_truth(xref: Frame, truth_mentions: Frame) -> pd.DataFrame:
    """person_id → true_id by majority of mentions (ties: the smaller true id), ordered by
    person_id. Every stage after resolution is measured through this one mapping."""
    true = true_ids(xref, truth_mentions)
    keep = true >= 0
    pred, true = _ints(xref, "person_id")[keep], true[keep]
    if not len(pred):
        return pd.DataFrame({"person_id": np.empty(0, np.int64), "true_id": np.empty(0, np.int64)})
    p, pred_values = _dense(pred)
    t, true_values = _dense(true)
    n_true = len(true_values)
    pair, counts = np.unique(p * n_true + t, return_counts=True)
    owner, truth_code = pair // n_true, pair % n_true
    # per person: most mentions first, then the smaller true id (codes order like the ids)
    first = _first_by_majority(owner, counts, truth_code)
    return pd.DataFrame({"person_id": pred_values[owner[first]], "true_id": true_values[truth_code[first]]})


def true_person_of(lake: Lake, registries: list[str] | None = None,
                   person_ids: np.ndarray | None = None) -> pd.Series:
    """pipeline person_id → true person id (``golden_to_truth`` over the lake's crosswalk), read
    only for ``registries`` and ``person_ids`` when given."""
    xref_path, truth_path = lake.table("resolution", "person_xref"), lake.truth("mentions")
    if not registries and person_ids is None:  # the whole crosswalk: column by column
        return golden_to_truth(ParquetColumns(xref_path), ParquetColumns(truth_path)).set_index("person_id").true_id
    filters = [("registry", "in", list(registries))] if registries else None
    xref = pq.read_table(xref_path, columns=KEYS + ["person_id"], filters=filters)
    if person_ids is not None:
        wanted = np.isin(_ints(xref, "person_id"), pd.unique(np.asarray(person_ids)))
        xref = xref.filter(pa.array(wanted))
    truth = pq.read_table(truth_path, columns=KEYS + ["person_id"], filters=filters)
    return golden_to_truth(xref, truth).set_index("person_id").true_id


def linkage_accuracy(xref: Frame, truth: Frame, candidates: Frame | None = None) -> dict:
    """``xref``: registry, record_id, group, person_id[, signature]; ``truth``: registry, record_id,
    group, person_id; ``candidates``: signature_a, signature_b (the blocked pairs)."""
    true = true_ids(xref, truth)
    keep = np.flatnonzero(true >= 0)
    pred_id = _ints(xref, "person_id")[keep]
    true = true[keep]
    p, pred_values = _dense(pred_id)
    t, true_values = _dense(true)
    n_pred, n_true = len(pred_values), len(true_values)
    pred_size = np.bincount(p, minlength=n_pred)
    true_size = np.bincount(t, minlength=n_true)
    pair, pair_size = np.unique(p * n_true + t, return_counts=True)  # distinct (predicted, true) persons
    pair_pred, pair_true = pair // n_true, pair % n_true
    both, pp, tp = _pair_count(pair_size), _pair_count(pred_size), _pair_count(true_size)
    precision = both / pp if pp else 1.0
    recall = both / tp if tp else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    # clusters: a true person is recovered exactly when its mentions are exactly one predicted cluster
    preds_per_true = np.bincount(pair_true, minlength=n_true)
    trues_per_pred = np.bincount(pair_pred, minlength=n_pred)
    alone = preds_per_true[pair_true] == 1  # the pair is all of its true person's mentions
    exact = int((alone & (pred_size[pair_pred] == pair_size)).sum())
    out = {
        "mentions": int(len(keep)),
        "true_persons": int(n_true),
        "predicted_persons": int(n_pred),
        "pairwise": {"precision": round(precision, 5), "recall": round(recall, 5), "f1": round(f1, 5),
                     "true_pairs": tp, "predicted_pairs": pp},
        "clusters": {
            "persons_recovered_exactly": round(exact / n_true, 5) if n_true else float("nan"),
            "predicted_pure": round(float((trues_per_pred == 1).mean()), 5) if n_pred else float("nan"),
            "true_persons_split": int((preds_per_true > 1).sum()),
            "predicted_merging_persons": int((trues_per_pred > 1).sum()),
        },
    }
    columns = list(xref.columns) if isinstance(xref, pd.DataFrame) else list(xref.column_names)
    if candidates is not None and "signature" in columns:
        out["blocking"] = _blocking_completeness(_ints(xref, "signature")[keep], t,
                                                 _ints(candidates, "signature_a"), _ints(candidates, "signature_b"))
    return out


def _blocking_completeness(signature: np.ndarray, t: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict:
    """Pair completeness over distinct signatures of the same true person (``t``: true person code
    per mention, ordered like the true ids)."""
    # each signature stands for the true person most of its mentions name (ties: the smaller id)
    s, sig_values = _dense(signature)
    n_true = int(t.max()) + 1 if len(t) else 1
    pair, counts = np.unique(s * n_true + t, return_counts=True)
    owner, truth_code = pair // n_true, pair % n_true
    first = _first_by_majority(owner, counts, truth_code)
    sig_true = truth_code[first]  # per signature code, in signature order
    true_pairs = _pair_count(np.bincount(sig_true))
    # candidate pairs whose two signatures stand for the same true person
    n = int(max(sig_values.max() if len(sig_values) else 0, a.max() if len(a) else 0, b.max() if len(b) else 0)) + 1
    true_of = np.full(n, -1, np.int64)
    true_of[sig_values] = sig_true
    ta, tb = true_of[a], true_of[b]
    inner = (ta == tb) & (ta >= 0)
    found = int(inner.sum())
    # reachable: joined through candidate pairs between signatures of the same true person
    # (a record with only an IIN and one with only a name can meet only through a third)
    comp = components(n, a[inner], b[inner])  # each signature's component's smallest signature
    reachable = _pair_count(np.bincount(comp[sig_values]))
    return {"true_signature_pairs": true_pairs, "in_candidates": found,
            "pair_completeness": round(found / true_pairs, 5) if true_pairs else 1.0,
            "reachable_pairs": reachable,
            "reachable_completeness": round(reachable / true_pairs, 5) if true_pairs else 1.0}


def namesakes(persons: Frame) -> dict:
    """How often the country's persons share their full name (surname, given name and
    patronymic), nationally and within their region: what a record naming someone by full name
    alone is worth, and so what linkage accuracy can be at this size."""
    n = max(len(persons), 1)
    full_name = [_encoded(persons, c)[0] + 1 for c in ("last_name", "first_name", "patronymic")]  # 0: none
    holders = np.bincount(dense_codes(full_name))  # persons per distinct full name
    in_region = np.bincount(dense_codes(full_name + [_encoded(persons, "region")[0] + 1]))
    return {"persons": len(persons),
            "sharing_full_name": round(float(holders[holders > 1].sum() / n), 5),
            "namesakes_per_person": round(float((holders * (holders - 1)).sum() / n), 4),
            "sharing_full_name_in_region": round(float(in_region[in_region > 1].sum() / n), 5)}


def resolution_section(lake: Lake) -> dict:
    xref_path = lake.table("resolution", "person_xref")
    if not xref_path.exists():
        return {"status": "not materialized"}
    # column by column, as the resolution asset measures itself: a national crosswalk and its
    # truth (67M rows each at 5M persons) are never in memory whole
    cand_path = lake.table("resolution", "person_candidate_pairs")
    candidates = ParquetColumns(cand_path) if cand_path.exists() else None
    return {"status": "ok",
            "persons": linkage_accuracy(ParquetColumns(xref_path), ParquetColumns(lake.truth("mentions")), candidates),
            "namesakes": namesakes(ParquetColumns(lake.truth("persons")))}

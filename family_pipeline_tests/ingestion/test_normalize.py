"""The fast paths of normalisation give what the plain Arrow kernels give: whitespace runs,
NFC, separators stripped from identifiers, and a repetitive column normalised through its
distinct values."""

import importlib
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from family_pipeline.catalog import catalog

normalize = importlib.import_module("family_pipeline.ingestion.normalize")

PIECES = ["a", " ", "  ", "\t", "\n", "\r", "\f", "\v", "ә", "й", "Ё", "\u0301", "e\u0301", "\u0483", "Å", "\u212b",
          "Ж", "-", "1", "7", "\u00a0", "\u04ff", "\u0487", "ﬁ"]


def _texts(n: int = 20000, seed: int = 7) -> pa.Array:
    rng = random.Random(seed)
    values = [None if rng.random() < 0.05 else "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6)))
              for _ in range(n)]
    return pa.array(values, pa.string())


def test_whitespace_nfc_and_separators_match_the_plain_kernels():
    texts = _texts()
    for arr in (texts, texts.slice(11, 9000), texts.filter(pc.is_valid(texts))):
        plain = pc.utf8_normalize(pc.replace_substring_regex(arr, r"\s+", " "), "NFC")
        assert normalize._nfc(normalize._collapse_spaces(arr)).equals(plain)
        assert normalize._strip_chars(arr, r"[\s\-]").equals(pc.replace_substring_regex(arr, r"[\s\-]", ""))


def test_a_repetitive_column_normalises_through_its_distinct_values_to_the_same_result():
    spec = next(s for s in catalog().registries if any(c.type == "iin" for c in s.columns))
    rng = np.random.default_rng(3)
    pool = _texts(300, seed=11).to_pylist() + ["870412300415", "8704123004-15", " 87041230041 ", "1.5", "12", "x"]
    raw = pa.array([pool[i] for i in rng.integers(0, len(pool), 3 * normalize.DISTINCT_SAMPLE)], pa.string())
    for col in spec.columns:
        fast = normalize.normalize_column(col, raw, spec, catalog())
        plain = normalize._normalize_values(col, raw, spec, catalog())
        assert fast.values.equals(plain.values), col.name
        assert fast.failures.keys() == plain.failures.keys()
        assert all(np.array_equal(fast.failures[k], plain.failures[k]) for k in plain.failures), col.name
        assert all(fast.extra[k].equals(plain.extra[k]) for k in plain.extra), col.name

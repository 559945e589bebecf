"""Names, dates and identifiers turned into comparable keys.

Names are compared in one alphabet: lower case, Kazakh letters folded to their Russian
look-alikes (ә→а, қ→к, …), then transliterated to Latin, so "Әбенова", "Абенова" and "Abenova"
meet. Patronymics lose their gendered suffix (-ович/-овна, -ұлы/-қызы) and keep the father's
name. Work happens on the distinct values of a column only, then is spread back to every row,
which keeps a national-size column at the cost of its vocabulary.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from family_pipeline.lib.alphabet import FOLD_TABLE, TRANSLIT_TABLE

__all__ = ["birth_date_from_iin", "name_codes", "name_key", "patronymic_stem", "sex_from_iin", "split_full_name",
           "split_full_names"]

_NOT_LETTER = re.compile(r"[^a-z]")
#: gendered patronymic endings, longest first, in the Latin spelling `name_key` gives
_PATRONYMIC_SUFFIXES = ("ovich", "evich", "ovna", "evna", "ichna", "ich", "uly", "kyzy", "ogly", "kyzi")
_LATIN_FOLD = str.maketrans({"ё": "е", "Ё": "Е"})


def name_key(value: str | None) -> str | None:
    """'Әбілқайыров ' → 'abilkaiyrov'; Latin input gives the same key as its Cyrillic form."""
    if value is None or value != value:  # None or NaN
        return None
    text = str(value).translate(_LATIN_FOLD).translate(FOLD_TABLE).lower().translate(TRANSLIT_TABLE).lower()
    text = text.replace("iy", "i").replace("yi", "i").replace("y", "i")  # й/ы/и spelled alike
    text = _NOT_LETTER.sub("", text)
    return text or None


def patronymic_stem(value: str | None) -> str | None:
    """'Ғабитқызы' and 'Габитович' → 'gabit' (the father's name)."""
    key = name_key(value)
    if key is None:
        return None
    for suffix in _PATRONYMIC_SUFFIXES:
        s = suffix.replace("y", "i")
        if key.endswith(s) and len(key) > len(s) + 1:
            return key[: -len(s)]
    return key


def name_codes(values: pd.Series | np.ndarray, how=name_key) -> tuple[np.ndarray, np.ndarray]:
    """Normalise a column through its distinct values: (codes per row, -1 missing; key per code)."""
    raw_codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    keys = [how(u) for u in uniques]
    key_codes, key_uniques = pd.factorize(pd.Series(keys, dtype=object), use_na_sentinel=True)
    key_codes = np.asarray(key_codes, dtype=np.int64)
    codes = np.where(raw_codes >= 0, key_codes[np.maximum(raw_codes, 0)] if len(key_codes) else -1, -1)
    return codes.astype(np.int64), np.asarray(key_uniques, dtype=object)


def split_full_name(full: pd.Series) -> pd.DataFrame:
    """'Фамилия Имя Отчество' → three columns; two words give no patronymic (``split_full_names``)."""
    arr = pa.array(pd.Series(full, dtype=object).to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    index = full.index if isinstance(full, pd.Series) else None
    return pd.DataFrame({name: pd.Series(part.to_numpy(zero_copy_only=False).astype(object), dtype=object, index=index)
                         for name, part in split_full_names(arr).items()})


def split_full_names(full: pa.Array) -> dict[str, pa.Array]:
    """Full names as Arrow text → last name, first name, patronymic (null where a name has no
    such word), all in Arrow: the words are cut at whitespace, the third keeps the rest of the
    name. No Python object per name (a national table has millions of distinct full names)."""
    words = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(full), max_splits=2)
    flat = pc.list_flatten(words)
    parent = pc.list_parent_indices(words).to_numpy().astype(np.int64)
    starts = np.asarray(words.offsets.to_numpy(zero_copy_only=False), np.int64)
    position = np.arange(len(flat)) - starts[parent] if len(flat) else np.empty(0, np.int64)
    out = {}
    for k, name in enumerate(("last_name", "first_name", "patronymic")):
        at = np.flatnonzero(position == k)
        index = np.full(len(full), -1, np.int64)
        index[parent[at]] = at
        out[name] = flat.take(pa.array(index, mask=index < 0))
    return out


def birth_date_from_iin(iin: np.ndarray) -> np.ndarray:
    """Birth dates (datetime64[D], NaT where unknown) encoded in well-formed IINs."""
    s = pd.Series(iin, dtype="string")
    ok = s.str.fullmatch(r"\d{12}").fillna(False).to_numpy()
    out = np.full(len(s), np.datetime64("NaT"), dtype="datetime64[D]")
    if not ok.any():
        return out
    d = s[ok]
    century = d.str[6].astype(int).to_numpy()
    base = np.select([century <= 2, century <= 4], [1800, 1900], 2000)
    dates = pd.to_datetime(
        pd.DataFrame({"year": base + d.str[0:2].astype(int).to_numpy(), "month": d.str[2:4].astype(int).to_numpy(),
                      "day": d.str[4:6].astype(int).to_numpy()}),
        errors="coerce",
    )
    out[ok] = dates.to_numpy().astype("datetime64[D]")
    return out


def sex_from_iin(iin: np.ndarray) -> np.ndarray:
    """'M'/'F' from the 7th digit of a well-formed IIN (odd: male), None otherwise."""
    s = pd.Series(iin, dtype="string")
    digit = pd.to_numeric(s.str[6], errors="coerce")
    ok = s.str.fullmatch(r"\d{12}").fillna(False).to_numpy() & digit.between(1, 6).fillna(False).to_numpy()
    return np.where(ok, np.where(digit.fillna(0).to_numpy() % 2 == 1, "M", "F"), None).astype(object)

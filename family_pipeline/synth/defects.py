"""Realistic defects injected into registry exports, each one recorded as truth.

Rates are per record and scaled by ``defect_scale``; a registry's ``synth.defects`` multiplies
the rate of a kind for that registry (e.g. hand-written household books get more typos).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from family_pipeline.lib.alphabet import FOLD_TABLE, transliterate
from family_pipeline.lib.identifiers import check_digits_array
from family_pipeline.synth.exports import Export

DEFAULT_RATES: dict[str, float] = {
    "name_typo": 0.012,
    "name_translit": 0.004,
    "name_swap": 0.003,
    "letter_folding": 0.01,
    "iin_missing": 0.01,
    "iin_bad_check": 0.004,
    "iin_wrong_valid": 0.0015,
    "iin_relative": 0.002,
    "duplicate_record": 0.004,
    "dead_person_appears": 0.003,
    "wrong_region": 0.005,
    "out_of_range": 0.002,
    "malformed_row": 0.001,
    "virtual_animal": 0.01,
    "tag_typo": 0.01,
    "stale_extract": 0.05,  # per registry, not per record
}
DEFECT_KINDS = tuple(DEFAULT_RATES) + ("phantom_animal",)
CYRILLIC = np.array(list("абвгдеёжзийклмнопрстуфхцчшщыэюя"))
NAME_PARTS = ("last_name", "first_name", "patronymic", "full_name")
#: how an ear tag is mistyped (recorded as the defect's detail), with relative frequencies
TAG_TYPOS = {"substitution": 0.3, "deletion": 0.15, "transposition": 0.2, "prefix_dropped": 0.15,
             "prefix_lower": 0.1, "prefix_spaced": 0.1}
DIGITS = np.array(list("0123456789"))


class DefectInjector:
    def __init__(self, scale: float, rng: np.random.Generator, entities: dict[str, pd.DataFrame]):
        self.scale = scale
        self.rng = rng
        self.persons = entities["persons"]
        self.entities = entities

    def rate(self, export: Export, kind: str) -> float:
        return min(0.5, DEFAULT_RATES[kind] * self.scale * export.spec.synth.defects.get(kind, 1.0))

    def pick(self, export: Export, kind: str, eligible: np.ndarray | None = None) -> np.ndarray:
        n = len(export)
        if n == 0 or self.scale <= 0:
            return np.zeros(0, dtype=np.int64)
        hit = self.rng.random(n) < self.rate(export, kind)
        if eligible is not None:
            hit &= eligible
        return np.flatnonzero(hit)

    # ------------------------------------------------------------------ orchestration
    def inject(self, export: Export) -> Export:
        spec = export.spec
        export = self._append_rows(export)
        for group in spec.person_groups:
            roles = spec.role_columns(group)
            self._names(export, roles)
            if "iin" in roles:
                self._iins(export, group, roles["iin"])
        for col in spec.columns:
            if col.type == "region":
                self._wrong_region(export, col.name)
            if col.type in ("int", "decimal") and (col.min is not None or col.max is not None):
                self._out_of_range(export, col)
        self._malformed(export)
        if spec.has_animals:
            self._tag_typos(export)
            self._phantoms(export)
        return export

    # ------------------------------------------------------------------ rows added
    def _append_rows(self, export: Export) -> Export:
        n = len(export)
        extra: list[tuple[str, np.ndarray]] = []
        dup = self.pick(export, "duplicate_record")
        extra.append(("duplicate_record", dup))
        if export.spec.has_animals:
            extra.append(("virtual_animal", self.pick(export, "virtual_animal")))
        idx = np.concatenate([np.arange(n)] + [rows for _, rows in extra])
        grown = export.take(idx)
        grown.defects = list(export.defects)
        start = n
        for kind, rows in extra:
            new = np.arange(start, start + len(rows))
            start += len(rows)
            if kind == "virtual_animal":
                self._move_animals(grown, new)
            grown.defects.append((kind, new, None, ""))
        grown = self._dead_persons(grown)
        return grown

    def _move_animals(self, export: Export, rows: np.ndarray) -> None:
        """The same animal also registered in another village (another name; region column kept)."""
        spec = export.spec
        roles = spec.role_columns("animal")
        if "settlement" not in roles or len(rows) == 0:
            return
        st = self.entities["settlements"]
        # distinct names: a copy filed under a namesake village would be no second place at all
        villages = np.unique(st[st.settlement_type == "village"].settlement_name.to_numpy().astype(str)).astype(object)
        col = export.columns[roles["settlement"]]
        new = villages[self.rng.integers(0, len(villages), len(rows))]
        same = new == col[rows]
        new[same] = villages[(self.rng.integers(0, len(villages), same.sum()) + 1) % len(villages)]
        still = new == col[rows]
        new[still] = villages[(np.searchsorted(villages, new[still]) + 1) % len(villages)]
        col[rows] = new

    def _dead_persons(self, export: Export) -> Export:
        """Records of persons who died before the extract (payments, contracts, enrolments)."""
        spec = export.spec
        entity = spec.synth.entity
        where = spec.synth.where or ""
        if "subject" not in spec.person_groups or not (entity == "payments" or (entity == "persons" and "alive" in where)):
            return export
        n_new = int(self.rng.binomial(len(export), self.rate(export, "dead_person_appears"))) if len(export) else 0
        dead = self.persons.person_id.to_numpy()[~self.persons.alive.to_numpy()]
        if n_new == 0 or len(dead) == 0:
            return export
        template = self.rng.integers(0, len(export), n_new)
        grown = export.take(np.concatenate([np.arange(len(export)), template]))
        grown.defects = list(export.defects)
        rows = np.arange(len(export), len(export) + n_new)
        who = self.rng.choice(dead, n_new)
        grown.person_ids["subject"][rows] = who
        from family_pipeline.synth.exports import person_part

        for part, name in spec.role_columns("subject").items():
            grown.columns[name][rows] = person_part(self.persons, who, part)
        grown.defects.append(("dead_person_appears", rows, None, ""))
        return grown

    # ------------------------------------------------------------------ names
    def _names(self, export: Export, roles: dict[str, str]) -> None:
        names = [roles[p] for p in NAME_PARTS if p in roles]
        if not names:
            return
        for kind, fn in (("letter_folding", _fold), ("name_typo", self._typo), ("name_translit", transliterate)):
            for col in names:
                values = export.columns[col]
                rows = self.pick(export, kind, _present(values))
                if kind == "letter_folding":
                    changed = [r for r in rows if values[r].translate(FOLD_TABLE) != values[r]]
                    rows = np.asarray(changed, dtype=np.int64)
                for r in rows:
                    values[r] = fn(values[r])
                if len(rows):
                    export.defects.append((kind, rows, col, ""))
        if "last_name" in roles and "first_name" in roles:
            rows = self.pick(export, "name_swap")
            a, b = export.columns[roles["last_name"]], export.columns[roles["first_name"]]
            a[rows], b[rows] = b[rows].copy(), a[rows].copy()
            export.defects.append(("name_swap", rows, roles["last_name"], ""))
        elif "full_name" in roles:
            rows = self.pick(export, "name_swap")
            col = export.columns[roles["full_name"]]
            for r in rows:
                if col[r]:
                    parts = col[r].split(" ")
                    if len(parts) >= 2:
                        parts[0], parts[1] = parts[1], parts[0]
                        col[r] = " ".join(parts)
            export.defects.append(("name_swap", rows, roles["full_name"], ""))

    def _typo(self, s: str) -> str:
        if not s or len(s) < 3:
            return s
        i = int(self.rng.integers(1, len(s) - 1))
        op = int(self.rng.integers(0, 4))
        low = s[i].islower()
        c = str(self.rng.choice(CYRILLIC)) if any("\u0400" <= ch <= "\u04ff" for ch in s) else "x"
        c = c if low else c.upper()
        if op == 0:
            return s[:i] + c + s[i + 1:]  # substitution
        if op == 1:
            return s[:i] + s[i + 1:]  # deletion
        if op == 2:
            return s[:i] + c + s[i:]  # insertion
        return s[: i - 1] + s[i] + s[i - 1] + s[i + 1:]  # transposition

    # ------------------------------------------------------------------ identifiers
    def _iins(self, export: Export, group: str, col: str) -> None:
        values = export.columns[col]
        present = _present(values)
        required = export.spec.column(col).required
        taken = np.zeros(len(values), bool)

        def pick(kind: str) -> np.ndarray:
            rows = self.pick(export, kind, present & ~taken)
            taken[rows] = True
            return rows

        # a relative's IIN copied onto the record
        rows = pick("iin_relative")
        pid = export.person_ids[group][rows]
        ok = pid >= 0
        rows, pid = rows[ok], pid[ok]
        fam = self.persons.family_id.to_numpy()[pid]
        in_fam = fam >= 0
        rows, pid, fam = rows[in_fam], pid[in_fam], fam[in_fam]
        head = self.entities["families"].head_id.to_numpy()[fam]
        size = self.entities["families"].members.to_numpy()[fam]
        relative = np.where(pid == head, head + 1, head)
        ok = size >= 2
        rows, relative = rows[ok], relative[ok]
        values[rows] = self.persons.iin.to_numpy()[relative]
        export.defects.append(("iin_relative", rows, col, ""))

        rows = pick("iin_bad_check")
        # digits 1-10 only: the 11th has weight 11 = 0 (mod 11), so changing it may keep the check
        new = [_bad_check(v, int(self.rng.integers(0, 10))) for v in values[rows]]
        keep = np.array([n is not None for n in new], dtype=bool)
        rows = rows[keep] if len(rows) else rows
        values[rows] = [n for n in new if n is not None]
        export.defects.append(("iin_bad_check", rows, col, ""))

        rows = pick("iin_wrong_valid")
        new = [_wrong_but_valid(v, int(self.rng.integers(1, 10))) for v in values[rows]]
        keep = np.array([n is not None for n in new], dtype=bool)
        rows = rows[keep] if len(rows) else rows
        values[rows] = [n for n in new if n is not None]
        export.defects.append(("iin_wrong_valid", rows, col, ""))

        if not required:
            rows = pick("iin_missing")
            values[rows] = None
            export.defects.append(("iin_missing", rows, col, ""))

    # ------------------------------------------------------------------ values
    def _wrong_region(self, export: Export, col: str) -> None:
        values = export.columns[col]
        rows = self.pick(export, "wrong_region", _present(values))
        regions = np.array(sorted(set(self.entities["settlements"].region)), dtype=object)
        shift = self.rng.integers(1, len(regions), len(rows))
        pos = np.searchsorted(regions, values[rows].astype(str))
        values[rows] = regions[(pos + shift) % len(regions)]
        export.defects.append(("wrong_region", rows, col, ""))

    def _out_of_range(self, export: Export, col) -> None:
        values = export.columns[col.name]
        rows = self.pick(export, "out_of_range", _present(values))
        if col.max is not None:
            bad = col.max * 10 + 7
        else:
            bad = col.min - 1000
        if values.dtype.kind in "iu":
            values[rows] = int(bad)
        else:
            values = values.astype(float) if values.dtype.kind != "f" else values
            values[rows] = float(bad)
            export.columns[col.name] = values
        export.defects.append(("out_of_range", rows, col.name, ""))

    def _malformed(self, export: Export) -> None:
        rows = self.pick(export, "malformed_row")
        export.malformed = rows
        export.defects.append(("malformed_row", rows, None, ""))

    def _tag_typos(self, export: Export) -> None:
        """Ear tags as clerks mistype them: one character of the number changed, dropped or two
        adjacent ones swapped; or the "KZ" prefix dropped, lower-cased or followed by spaces."""
        col = export.spec.role_columns("animal").get("tag")
        if col is None:
            return
        values = export.columns[col]
        text = pd.Series(values, dtype=object)
        # "KZ" + at least three characters, so every variant stays a plausible tag
        ok = text.str.match(r"^KZ.{3,}$").fillna(False).to_numpy(dtype=bool)
        rows = self.pick(export, "tag_typo", ok)
        if len(rows) == 0:
            return
        kinds = np.array(list(TAG_TYPOS))
        p = np.array(list(TAG_TYPOS.values()))
        kind = kinds[self.rng.choice(len(kinds), len(rows), p=p / p.sum())]
        tags = values[rows].astype(str)
        chars = tags.view("U1").reshape(len(tags), -1).copy()
        width = chars.shape[1]
        length = np.char.str_len(tags)
        # a position in the number after the prefix (transposition: one with a right neighbour)
        at = 2 + (self.rng.random(len(rows)) * (length - 2 - (kind == "transposition"))).astype(np.int64)
        row = np.arange(len(rows))
        sub = kind == "substitution"
        old = chars[row[sub], at[sub]]
        shift = self.rng.integers(1, 10, int(sub.sum()))
        chars[row[sub], at[sub]] = _other_digit(old, shift)
        swap = kind == "transposition"
        left, right = chars[row[swap], at[swap]], chars[row[swap], at[swap] + 1]
        chars[row[swap], at[swap]], chars[row[swap], at[swap] + 1] = right, left
        # two equal neighbours swapped change nothing: those become substitutions of the first
        same = row[swap][left == right]
        chars[same, at[same]] = _other_digit(chars[same, at[same]], np.ones(len(same), np.int64))
        kind[same] = "substitution"
        drop = kind == "deletion"
        cols = np.arange(width)[None, :]
        src = np.where(drop[:, None] & (cols >= at[:, None]), cols + 1, cols)
        chars = np.take_along_axis(np.concatenate([chars, np.full((len(rows), 1), "")], axis=1), src, axis=1)
        typed = chars.view(f"U{width}").ravel().astype(object)
        number = np.char.partition(tags, "KZ")[:, 2]
        typed = np.where(kind == "prefix_dropped", number, typed)
        typed = np.where(kind == "prefix_lower", np.char.add("kz", number), typed)
        typed = np.where(kind == "prefix_spaced", np.char.add("KZ ", number), typed)
        values[rows] = typed.astype(object)
        for name in kinds:
            hit = rows[kind == name]
            if len(hit):
                export.defects.append(("tag_typo", hit, col, name))

    def _phantoms(self, export: Export) -> None:
        animals = self.entities["animals"]
        phantom = animals.phantom.to_numpy()[export.animal_ids]
        export.defects.append(("phantom_animal", np.flatnonzero(phantom), None, ""))


def _other_digit(chars: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """A digit ``shift`` (1-9) steps from each character (any digit for a non-digit)."""
    base = np.where(np.char.isdigit(chars), np.searchsorted(DIGITS, chars), 0)
    return DIGITS[(base + shift) % 10]


def _fold(s: str) -> str:
    return s.translate(FOLD_TABLE)


def _bad_check(iin: str, pos: int) -> str | None:
    """Change one digit so the check digit no longer matches (None if no change of that digit does)."""
    d = [int(c) for c in iin]
    for step in range(1, 10):
        d2 = d.copy()
        d2[pos] = (d[pos] + step) % 10
        cd = check_digits_array(np.array([d2[:11]]))[0]
        if cd != d2[11]:
            return "".join(map(str, d2))
    return None


def _wrong_but_valid(iin: str, step: int) -> str | None:
    """One wrong digit that still passes: the 11th digit has weight 11 ≡ 0 (mod 11) in the
    first pass, so changing it keeps the check digit whenever the first pass decides it."""
    d = np.array([int(c) for c in iin])
    first = int((d[:11] * np.arange(1, 12)).sum() % 11)
    if first == 10:
        return None
    d[10] = (d[10] + step) % 10
    return "".join(map(str, d))


def _present(values: np.ndarray) -> np.ndarray:
    """Which values are there (not None/NaN/NaT), without a pandas Series (whose string
    inference would copy every value to Arrow)."""
    return np.asarray(pd.notna(np.asarray(values)), dtype=bool)

"""Checks of one registry against others: the population register (ГБД ФЛ) and the civil
register's deaths (ЗАГС), and the livestock anomalies found by resolution."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from family_pipeline.catalog import RegistrySpec
from family_pipeline.lib.alphabet import FOLD_TABLE
from family_pipeline.quality.checks import CROSS_CHECKS, CheckOutcome
from family_pipeline.resolution.normalize import name_codes, name_key, patronymic_stem

__all__ = ["POPULATION_REGISTER", "Reference", "after_death", "duplicates", "livestock", "population_register"]

POPULATION_REGISTER = "gbd_fl"
#: the national ear-tag format: country code and twelve digits
TAG_PATTERN = r"KZ\d{12}"
#: share of checked references above which a register mismatch is an ERROR
ERROR_SHARE = 0.20
_PARTS = ("last_name", "first_name", "patronymic")


class Reference:
    """What the other registries say about people: the resolved persons (golden records, which
    follow the majority of registries, so one registry's typo does not become the reference),
    which person each mention is, and the IINs the population register knows."""

    def __init__(self, persons: pd.DataFrame, register_iins: pd.Series):
        self.persons = persons.set_index("person_id")
        self.register_iins = pa.array(pd.unique(register_iins.dropna()), pa.string())
        #: IINs a resolved person seen in two or more records carries: unknown to the register, but
        #: not to the country (a one-off mistyped IIN makes a person of one record only)
        seen = self.persons[self.persons["mentions"] >= 2]
        self.person_iins = pa.array(pd.unique(seen["iin"].dropna()), pa.string())
        self.death = pd.to_datetime(self.persons["death_date"], errors="coerce").dropna()


def _in(values: pd.Series, value_set: pa.Array) -> pd.Series:
    """``values.isin(value_set)`` in Arrow (pandas converts a value set to Python objects)."""
    arr = pa.array(values.astype(object).where(values.notna(), None).to_numpy(), pa.string())
    return pd.Series(pc.fill_null(pc.is_in(arr, value_set=value_set), False).to_numpy(zero_copy_only=False),
                     index=values.index)


def _keys(values: pd.Series, how=name_key) -> np.ndarray:
    codes, vocab = name_codes(values.to_numpy(dtype=object), how)
    return np.where(codes >= 0, vocab[np.maximum(codes, 0)] if len(vocab) else None, None).astype(object)


def _as_written(values: pd.Series, fold: bool) -> pd.Series:
    v = values.astype("string").str.strip()
    return v.str.translate(FOLD_TABLE) if fold else v


def _person_of(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame, group: str) -> pd.Series:
    """The resolved person id of each row's reference ``group`` (NaN where unresolved)."""
    x = xref[xref.group == group].drop_duplicates("record_id").set_index("record_id").person_id
    return pd.Series(x.reindex(clean[spec.record_id].astype(str).to_numpy()).to_numpy(), index=clean.index)


def population_register(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame, ref: Reference) -> CheckOutcome:
    out = CheckOutcome("population_register", True, "WARN", CROSS_CHECKS["population_register"])
    fold = spec.source.encoding == "cp1251"  # the agency cannot write Kazakh letters
    checked = 0
    flagged: dict[str, set] = {}
    ids_all = clean[spec.record_id].astype(str)

    def flag(reason: str, mask) -> None:
        flagged.setdefault(reason, set()).update(ids_all[mask.reindex(clean.index, fill_value=False)])

    for group in spec.person_groups:
        roles = spec.role_columns(group)
        person = _person_of(spec, clean, xref, group)
        golden = ref.persons.reindex(person.to_numpy())
        golden.index = clean.index
        resolved = person.notna()
        if "iin" in roles:
            iin = clean[roles["iin"]]
            valid = clean.get(f"{roles['iin']}_valid", pd.Series(True, index=clean.index)).fillna(False).astype(bool)
            checked += int(iin.notna().sum())
            flag("iin_unknown", iin.notna() & valid & ~_in(iin, ref.register_iins) & ~_in(iin, ref.person_iins))
            # the record carries another IIN than the person it describes (mistyped, a relative's)
            flag("iin_differs", resolved & iin.notna() & golden["iin"].notna() & (iin != golden["iin"]).fillna(False))
            # the IIN belongs to another resolved person (a relative's, copied onto this record)
            flag("iin_of_another_person", resolved & iin.notna() & golden["iin"].isna()
                 & golden["iin_disputed"].fillna(False).astype(bool) & _in(iin, ref.person_iins))
        if "birth_date" in roles:
            a = pd.to_datetime(clean[roles["birth_date"]], errors="coerce")
            b = pd.to_datetime(golden["birth_date"], errors="coerce")
            flag("birth_date_differs", a.notna() & b.notna() & (a != b))
        parts = {p: clean[roles[p]] for p in _PARTS if p in roles}
        if "full_name" in roles:
            split = clean[roles["full_name"]].astype("string").str.strip().str.split(r"\s+", n=2, expand=True, regex=True)
            for k, p in enumerate(_PARTS):
                if p not in parts and k in split.columns:
                    parts[p] = split[k]
        spelled = pd.Series(False, index=clean.index)
        for p, values in parts.items():
            theirs = golden[p]
            wa, wb = _as_written(values, fold), _as_written(theirs, fold)
            both = (wa.notna() & wb.notna()).fillna(False)
            if p == "patronymic":
                # patronymic forms legitimately vary (-ович / -ұлы): a different father's name, a
                # folded Kazakh letter or Latin letters are what count
                ka, kb = _keys(values, patronymic_stem), _keys(theirs, patronymic_stem)
                stem = pd.Series(pd.notna(ka) & pd.notna(kb) & (ka != kb), index=clean.index)
                folded = both & (wa != wb).fillna(False) & (wa.str.translate(FOLD_TABLE) == wb.str.translate(FOLD_TABLE)).fillna(False)
                latin = values.astype("string").str.contains(r"[A-Za-z]", regex=True).fillna(False)
                spelled |= (stem | folded | latin).to_numpy()
                continue
            spelled |= (both & (wa != wb)).fillna(False).to_numpy()
        flag("name_differs", spelled)
        if "region" in roles:
            ra, rb = clean[roles["region"]], golden["region"]
            flag("region_differs", (ra.notna() & rb.notna() & (ra != rb)).fillna(False))
    for reason, ids in flagged.items():
        if ids:
            out.flagged[reason] = sorted(ids)
            out.counts[reason] = len(ids)
    out.details["references_checked"] = checked
    out.passed = not out.flagged
    serious = len(set(out.flagged.get("iin_unknown", [])) | set(out.flagged.get("iin_differs", [])))
    if checked and serious / checked > ERROR_SHARE:
        out.severity = "ERROR"
    return out


def duplicates(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame) -> CheckOutcome:
    """The same record again under another id: the same resolved persons and the same facts
    (a re-keyed copy often has its names retyped or its IIN mistyped, so persons are compared as
    resolved, not as written)."""
    out = CheckOutcome("duplicates", True, "WARN", CROSS_CHECKS["duplicates"])
    if clean.empty:
        return out
    person_cols = {c.name for c in spec.columns if c.role_group and c.role_group != "animal"}
    facts = [c.name for c in spec.columns if c.name not in person_cols and c.name != spec.record_id]
    key = clean[facts].copy()
    for group in spec.person_groups:
        key[f"_{group}"] = _person_of(spec, clean, xref, group)
    if key.shape[1] == 0:
        return out
    # every member of a group of copies is flagged: which one is the original is the owner's call
    dup = key.duplicated(keep=False)
    if spec.person_groups:
        dup &= key[[f"_{g}" for g in spec.person_groups]].notna().any(axis=1)
    if dup.any():
        out.passed = False
        out.flagged["duplicate_record"] = clean.loc[dup, spec.record_id].astype(str).tolist()
        out.counts["duplicate_record"] = int(dup.sum())
        if dup.mean() > ERROR_SHARE:
            out.severity = "ERROR"
    return out


def after_death(spec: RegistrySpec, clean: pd.DataFrame, xref: pd.DataFrame, ref: Reference, extracted_at: str | None) -> CheckOutcome:
    """A living-persons registry that lists a dead subject; any record dated after its subject's death."""
    out = CheckOutcome("after_death", True, "WARN", CROSS_CHECKS["after_death"])
    if "subject" not in spec.person_groups or clean.empty:
        return out
    person = _person_of(spec, clean, xref, "subject")
    death = ref.death.reindex(person.to_numpy())
    death.index = clean.index
    ids = clean[spec.record_id].astype(str)
    if spec.living_only:
        when = pd.Timestamp(dt.datetime.fromisoformat(extracted_at).date()) if extracted_at else pd.Timestamp.max
        dead = death.notna() & (death <= when)
        if dead.any():
            out.flagged["dead_subject"] = ids[dead].tolist()
    dated = [c.name for c in spec.columns if c.type == "date" and c.role is None and c.name != "death_date"]
    late = pd.Series(False, index=clean.index)
    for col in dated:
        late |= (pd.to_datetime(clean[col], errors="coerce") > death).fillna(False)
    if late.any():
        out.flagged["dated_after_death"] = ids[late].tolist()
    out.counts = {k: len(v) for k, v in out.flagged.items()}
    out.passed = not out.flagged
    return out


def livestock(spec: RegistrySpec, linked: pd.DataFrame, anomalies: pd.DataFrame) -> CheckOutcome:
    """Records of this registry whose animal resolution found in several settlements at once
    (``virtual_animal``) or without a living, known owner (``phantom_animal``)."""
    out = CheckOutcome("livestock", True, "WARN", CROSS_CHECKS["livestock"])
    mine = linked[linked.registry == spec.code]
    if "tag" in mine:
        # a tag written otherwise than the animal's (a typo resolution corrected), or not in the
        # standard form ("KZ" and twelve digits)
        misspelt = mine.tag_norm.notna() & ~mine.animal_key.str.contains("#", regex=False) & (mine.tag_norm != mine.animal_key)
        malformed = mine.tag.notna() & ((mine.tag != mine.tag_norm)
                                        | ~mine.tag_norm.fillna("").str.fullmatch(TAG_PATTERN))
        for reason, mask in (("tag_differs", misspelt), ("tag_format", malformed)):
            if mask.any():
                out.flagged[reason] = sorted(set(mine.loc[mask, "record_id"].astype(str)))
                out.counts[reason] = len(out.flagged[reason])
    for kind, animals in anomalies.groupby("kind").animal_key:
        ids = mine.loc[mine.animal_key.isin(set(animals)), "record_id"].astype(str)
        if len(ids):
            out.flagged[f"{kind}_animal"] = sorted(set(ids))
            out.counts[f"{kind}_animal"] = len(out.flagged[f"{kind}_animal"])
    out.passed = not out.flagged
    return out

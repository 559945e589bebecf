"""Read what family formation and the features need from the lake: registry rows keyed by the
resolved ``person_id`` (through ``resolution/person_xref``), and the reference date.

Everything is columnar: one join of a registry's clean rows with its slice of the crosswalk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from family_pipeline.families.sets import isin, unique
from family_pipeline.lib.lake import Lake
from family_pipeline.lib.parquet_columns import ParquetRuns

__all__ = [
    "FORMATION_REGISTRIES",
    "FormationInputs",
    "PAYMENT_REGISTRIES",
    "formation_inputs",
    "Crosswalk",
    "person_rows",
    "reference_date",
    "xref_slice",
]

#: registries whose ``period`` column names the month a payment is for (the reference month)
PAYMENT_REGISTRIES = ("gcvp_pensions", "gcvp_disability_benefits", "gcvp_survivor_benefits", "asp_payments",
                      "child_care_allowance", "disabled_child_allowance", "large_family_allowance")
_NO_PERSON = np.int64(-1)
#: the registries family formation reads (besides the resolved persons and their crosswalk)
FORMATION_REGISTRIES = ("gbd_fl", "address_register", "household_books", "zags_marriages", "zags_divorces",
                        "zags_births", "zags_deaths", "guardianship_register", "higher_education_platform",
                        "tvet_colleges", "student_stipends", "student_dormitories", "cbdi_disability",
                        *PAYMENT_REGISTRIES)


def _codes(column) -> tuple[np.ndarray, list]:
    """Integer codes of a string column that order like its values, and the sorted values."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    values = arr.dictionary.to_pylist()
    order = sorted(range(len(values)), key=lambda i: values[i])
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values), dtype=np.int64)
    idx = arr.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return rank[idx], [values[i] for i in order]


def _increasing(values: pa.Array) -> bool:
    """Strictly increasing (so every value is distinct)."""
    return bool(pc.all(pc.less(values.slice(0, len(values) - 1), values.slice(1))).as_py())


class Crosswalk:
    """``resolution/person_xref`` cut by (registry, reference group).

    Up to ``IN_MEMORY_ROWS`` rows the file is read once, column-pruned; the rows of one
    (registry, group) follow each other in the file (else they are brought together by a stable
    sort on integer codes), so every slice is a zero-copy range instead of a scan of the file,
    and a registry's rows find their person with one hash lookup (``person_ids``). A larger
    crosswalk (a national one holds some 270M references) is read slice by slice: the file is
    written registry after registry, and each registry is read from the row groups that hold it
    (``ParquetRuns``).

    ``shared`` keeps the crosswalk of one lake per process (reloaded when the file changes), so
    the assets of a run read the file once instead of once per registry.
    """

    IN_MEMORY_ROWS = 60_000_000
    _shared: dict = {}

    def __init__(self, table: pa.Table | None = None, path=None):
        self._path = path
        #: a national crosswalk: where each registry's references lie in the file
        self._runs = ParquetRuns(path, "registry") if path is not None else None
        self._ranges: dict[tuple[str, str], tuple[int, int]] = {}
        self._table = None
        self._last: tuple | None = None
        if table is None:
            return
        valid = pc.and_(pc.is_valid(table.column("registry")), pc.is_valid(table.column("group")))
        if valid.null_count or not pc.all(valid).as_py():
            table = table.filter(valid)
        reg, reg_values = _codes(table.column("registry"))
        grp, grp_values = _codes(table.column("group"))
        width = max(len(grp_values), 1)
        codes = reg * width + grp
        del reg, grp
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.empty(0, np.int64)
        part = table.select(["record_id", "person_id"])
        if len(np.unique(codes[starts])) != len(starts):
            # a (registry, group) in several runs: bring each together (stable, file order kept)
            order = np.argsort(codes, kind="stable")
            codes = codes[order]
            part = part.take(pa.array(order))
            starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        # the crosswalk is written registry after registry: each slice is one run of rows
        ends = np.append(starts[1:], len(codes)).astype(np.int64)
        self._ranges = {(reg_values[k // width], grp_values[k % width]): (int(s), int(e))
                        for k, s, e in zip(codes[starts].tolist(), starts.tolist(), ends.tolist())}
        del codes
        self._table = pa.table({"record_id": part.column("record_id").cast(pa.large_string()).combine_chunks(),
                                "person_id": part.column("person_id").combine_chunks()})

    @classmethod
    def load(cls, store: Lake, registries: list[str] | None = None) -> Crosswalk:
        path = store.table("resolution", "person_xref")
        if pq.ParquetFile(path).metadata.num_rows > cls.IN_MEMORY_ROWS:
            return cls(path=path)
        filters = [("registry", "in", list(registries))] if registries else None
        return cls(pq.read_table(path, columns=["registry", "record_id", "group", "person_id"], filters=filters,
                                 read_dictionary=["registry", "group"]))

    @classmethod
    def shared(cls, store: Lake) -> Crosswalk:
        """The whole crosswalk of ``store``, loaded once per process while the file is unchanged."""
        path = store.table("resolution", "person_xref")
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        cached = cls._shared.get("crosswalk")
        if cached is None or cached[0] != key:
            cls._shared.clear()  # one lake at a time: drop the old one before reading the new
            cls._shared["crosswalk"] = (key, cls.load(store))
        return cls._shared["crosswalk"][1]

    @classmethod
    def release(cls) -> None:
        """Forget the shared crosswalk (its memory goes back once nothing else holds it)."""
        cls._shared.clear()

    def _raw(self, registry: str, group: str) -> pa.Table:
        """record_id, person_id of every reference of one (registry, group), in file order."""
        if self._table is not None:
            start, end = self._ranges.get((registry, group), (0, 0))
            return self._table.slice(start, end - start)
        if self._last is None or self._last[0] != (registry, group):  # national: one slice held at a time
            part = self._runs.read(registry, ["record_id", "person_id", "group"])
            part = part.filter(pc.fill_null(pc.equal(part.column("group"), group), False)).select(["record_id", "person_id"])
            self._last = ((registry, group), pa.table({
                "record_id": part.column("record_id").cast(pa.large_string()).combine_chunks(),
                "person_id": part.column("person_id").combine_chunks()}))
        return self._last[1]

    def _part(self, registry: str, group: str) -> pa.Table:
        """record_id, person_id of one slice, first reference of a record only."""
        part = self._raw(registry, group)
        # keep the first reference of a record (as drop_duplicates would)
        first = pc.index_in(part.column("record_id"), value_set=part.column("record_id"))
        keep = pc.equal(first, pa.array(np.arange(len(part), dtype=np.int32)))
        if len(part) and not pc.all(keep).as_py():
            part = part.filter(keep)
        return part

    def persons_of(self, registries) -> np.ndarray:
        """Sorted distinct persons any reference of ``registries`` names (every group)."""
        if self._table is None:
            ids = [self._runs.read(r, ["person_id"]).column("person_id").to_numpy() for r in dict.fromkeys(registries)]
            return unique(np.concatenate(ids)) if ids else np.empty(0, np.int64)
        chunks = [self._table.column("person_id").slice(start, end - start)
                  for (registry, _), (start, end) in self._ranges.items() if registry in set(registries)]
        if not chunks:
            return np.empty(0, np.int64)
        ids = np.concatenate([c.to_numpy() for c in chunks]).astype(np.int64)
        return unique(ids)

    def slice(self, registry: str, group: str) -> pd.DataFrame:
        frame = self._part(registry, group).to_pandas()
        frame["person_id"] = frame.person_id.astype("Int64")  # stays exact through left joins
        return frame

    def person_ids(self, registry: str, group: str, record_ids) -> np.ndarray:
        """The person each record of ``registry`` names in ``group`` (int64, -1 when none)."""
        part = self._raw(registry, group)
        keys = record_ids if isinstance(record_ids, (pa.Array, pa.ChunkedArray)) else pa.array(record_ids)
        keys = keys.cast(pa.large_string())
        keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
        refs = part.column("record_id").combine_chunks()
        aligned = len(keys) > 1 and not keys.null_count and len(refs) == len(keys) and refs.equals(keys)
        if aligned and _increasing(keys):
            # the usual case: the slice lists the registry's records in their order, each once
            return pc.fill_null(part.column("person_id"), -1).to_numpy().astype(np.int64)
        # index_in finds a record's first reference: the same person as a merge with the de-duplicated slice
        pos = pc.index_in(keys, value_set=refs)
        person = pc.take(part.column("person_id"), pos)
        return pc.fill_null(person, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def xref_slice(store: Lake, registry: str, group: str, crosswalk: Crosswalk | None = None) -> pd.DataFrame:
    """record_id → person_id of one registry's reference group."""
    return (crosswalk or Crosswalk.shared(store)).slice(registry, group)


def person_rows(store: Lake, registry: str, columns: list[str], group: str = "subject",
                person_column: str = "person_id", crosswalk: Crosswalk | None = None) -> pd.DataFrame:
    """Clean rows of a registry (``columns`` + record_id) with the resolved person of ``group``.

    Rows whose reference was not resolved keep ``person_id`` = -1. A missing registry table
    gives an empty frame with the requested columns. Without a ``crosswalk`` the process's
    shared one is used.
    """
    path = store.table("registries", registry)
    wanted = ["record_id", *[c for c in columns if c != "record_id"]]
    if not path.exists():
        empty = pd.DataFrame({c: pd.Series(dtype="object") for c in wanted})
        empty[person_column] = pd.Series(dtype="int64")
        return empty
    schema = pq.read_schema(path)
    present = [c for c in wanted if c in schema.names]
    table = pq.read_table(path, columns=present)
    person = (crosswalk or Crosswalk.shared(store)).person_ids(registry, group, table.column("record_id"))
    rows = table.to_pandas()
    for c in wanted:
        if c not in rows.columns:
            rows[c] = None
    rows[person_column] = person
    return rows


def reference_date(store: Lake) -> dt.date:
    """The month the data describes: the latest ``period`` paid in the payment registries (first
    day of that month); the death and birth registers' latest date when no payments exist."""
    latest: list[dt.date] = []
    for code in PAYMENT_REGISTRIES:
        path = store.table("registries", code)
        if path.exists() and "period" in pq.read_schema(path).names:
            col = pq.read_table(path, columns=["period"]).column("period")
            if col.length() and col.null_count < col.length():
                latest.append(pc.max(col.cast(pa.date32())).as_py())
    if latest:
        return max(latest)
    for code, column in (("zags_births", "child_birth_date"), ("zags_deaths", "death_date")):
        path = store.table("registries", code)
        if path.exists():
            col = pq.read_table(path, columns=[column]).column(column)
            if col.length() and col.null_count < col.length():
                latest.append(pc.max(col.cast(pa.date32())).as_py())
    return max(latest) if latest else dt.date.today()


@dataclass(frozen=True)
class FormationInputs:
    """Everything family formation reads, keyed by person_id (see ``formation.form_families``)."""

    persons: pd.DataFrame        # person_id, sex, birth_date, alive, resident, last_name, region, address
    marriages: pd.DataFrame      # husband_id, wife_id, marriage_date, divorce_date
    divorces: pd.DataFrame       # husband_id, wife_id, divorce_date
    births: pd.DataFrame         # child_id, mother_id, father_id
    guardianship: pd.DataFrame   # child_id, guardian_id, established_date
    students: pd.DataFrame       # person_id, full_time
    disabled: pd.DataFrame       # person_id, disability_group
    addresses: pd.DataFrame      # person_id, address, region, registered_since
    rural: pd.DataFrame          # person_id of everyone in a rural household book
    as_of: dt.date


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, errors="coerce").astype("datetime64[s]")


def formation_inputs(store: Lake, as_of: dt.date | None = None) -> FormationInputs:
    golden = pq.read_table(store.table("resolution", "persons"),
                           columns=["person_id", "sex", "birth_date", "alive", "last_name", "region", "address"]).to_pandas()
    cw = Crosswalk.load(store, list(FORMATION_REGISTRIES))
    resident_ids = cw.persons_of(["gbd_fl", "address_register"])
    golden["resident"] = isin(golden.person_id.to_numpy(), resident_ids)
    golden["birth_date"] = _dates(golden.birth_date)

    mar = person_rows(store, "zags_marriages", ["marriage_date", "divorce_date"], "husband", "husband_id", cw)
    mar = mar.merge(xref_slice(store, "zags_marriages", "wife", cw).rename(columns={"person_id": "wife_id"}), on="record_id", how="left")
    div = person_rows(store, "zags_divorces", ["marriage_date", "divorce_date"], "husband", "husband_id", cw)
    div = div.merge(xref_slice(store, "zags_divorces", "wife", cw).rename(columns={"person_id": "wife_id"}), on="record_id", how="left")
    bir = person_rows(store, "zags_births", [], "child", "child_id", cw)
    for group in ("mother", "father"):
        bir = bir.merge(xref_slice(store, "zags_births", group, cw).rename(columns={"person_id": f"{group}_id"}),
                        on="record_id", how="left")
    grd = person_rows(store, "guardianship_register", ["established_date"], "child", "child_id", cw)
    grd = grd.merge(xref_slice(store, "guardianship_register", "mother", cw).rename(columns={"person_id": "guardian_id"}),
                    on="record_id", how="left")
    students = pd.concat([person_rows(store, code, ["study_form"], crosswalk=cw) for code in ("higher_education_platform", "tvet_colleges")],
                         ignore_index=True)
    students["full_time"] = students.study_form.astype("object").fillna("full_time").eq("full_time")
    # a stipend or a dormitory place is given to full-time students only
    support = pd.concat([person_rows(store, code, [], crosswalk=cw) for code in ("student_stipends", "student_dormitories")],
                        ignore_index=True)
    students = pd.concat([students[["person_id", "full_time"]], support[["person_id"]].assign(full_time=True)],
                         ignore_index=True)
    disabled = person_rows(store, "cbdi_disability", ["disability_group"], crosswalk=cw)
    addresses = person_rows(store, "address_register", ["address", "region", "registered_since"], crosswalk=cw)
    rural = person_rows(store, "household_books", [], crosswalk=cw)

    def ids(frame: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
        for c in cols:
            frame[c] = frame[c].fillna(_NO_PERSON).astype("int64")
        return frame

    return FormationInputs(
        persons=golden,
        marriages=ids(mar.assign(marriage_date=_dates(mar.marriage_date), divorce_date=_dates(mar.divorce_date)),
                      ["husband_id", "wife_id"])[["record_id", "husband_id", "wife_id", "marriage_date", "divorce_date"]],
        divorces=ids(div.assign(divorce_date=_dates(div.divorce_date)), ["husband_id", "wife_id"])[
            ["record_id", "husband_id", "wife_id", "divorce_date"]],
        births=ids(bir, ["mother_id", "father_id"])[["record_id", "child_id", "mother_id", "father_id"]],
        guardianship=ids(grd.assign(established_date=_dates(grd.established_date)), ["guardian_id"])[
            ["record_id", "child_id", "guardian_id", "established_date"]],
        students=students[students.person_id >= 0][["person_id", "full_time"]],
        disabled=disabled[disabled.person_id >= 0][["person_id", "disability_group"]],
        addresses=addresses[addresses.person_id >= 0].assign(registered_since=lambda f: _dates(f.registered_since))[
            ["record_id", "person_id", "address", "region", "registered_since"]],
        rural=rural.loc[rural.person_id >= 0, ["person_id"]].drop_duplicates(),
        as_of=as_of or reference_date(store),
    )

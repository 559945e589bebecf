"""``family_features``: the documented parameters of every family, computed from the registries.

Each registry row reaches its family through the resolved person (``resolution/person_xref`` →
``families/family_members``). Rows are first de-duplicated on the registry's natural key (a
cadastral number, a VIN, a BIN, an ear tag, a payment per person and month, …) so that a record
exported twice is counted once, then aggregated per family with ``numpy.bincount`` over the
family's row number. Payments are those of the reference month (the latest ``period``). The
meaning, unit, dtype and sources of every column are in ``seeds/family_features.yaml``; the
columns come out in that order with those dtypes, and nothing else.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from family_pipeline.catalog import Catalog
from family_pipeline.families.dictionary import FeatureDictionary
from family_pipeline.families.formation import age_years
from family_pipeline.families.sets import isin
from family_pipeline.families.sources import Crosswalk, person_rows
from family_pipeline.lib.lake import ROW_GROUP, Lake, write_slices
from family_pipeline.resolution.blocking import dictionary_codes

__all__ = ["BENEFIT_REGISTRIES", "PENSION_REGISTRIES", "family_features", "feature_columns", "write_family_features"]

PENSION_REGISTRIES = ("gcvp_pensions", "gcvp_disability_benefits", "gcvp_survivor_benefits")
#: monthly benefits counted as income (besides pensions)
INCOME_BENEFITS = ("child_care_allowance", "disabled_child_allowance", "large_family_allowance", "asp_payments",
                   "unemployment_benefits", "caregiver_allowance", "athletes_lifelong_payments", "student_stipends")
#: every benefit type counted by ``benefits_received`` (flag column → registry)
BENEFIT_REGISTRIES = {
    "receives_disability_pension": "gcvp_disability_benefits",
    "receives_survivor_benefit": "gcvp_survivor_benefits",
    "receives_child_care_allowance": "child_care_allowance",
    "receives_disabled_child_allowance": "disabled_child_allowance",
    "receives_large_family_allowance": "large_family_allowance",
    "receives_asp": "asp_payments",
    "receives_unemployment_benefit": "unemployment_benefits",
    "receives_caregiver_allowance": "caregiver_allowance",
    "_athlete": "athletes_lifelong_payments",
    "_stipend": "student_stipends",
    "receives_birth_grant": "birth_grants",
    "receives_utility_subsidy": "utility_subsidies",
    "receives_rent_subsidy": "rent_subsidies",
}
LAW_ENFORCEMENT = ("judges_register", "prosecutors_register", "investigators_register", "law_enforcement_staff",
                   "military_personnel")
HOUSING_QUEUES = ("otbasy_housing_queue", "akimat_queue_astana", "akimat_queue_almaty", "akimat_queue_shymkent",
                  "akimat_queue_regions")
RESIDENTIAL = ("apartment", "house")


class _Families:
    """Row numbers of families and of their members, and per-family aggregation."""

    def __init__(self, members: pd.DataFrame, families: pd.DataFrame):
        self.family_id = families.family_id.to_numpy(np.int64)
        self.n = len(self.family_id)
        row = np.searchsorted(self.family_id, members.family_id.to_numpy(np.int64))
        self._row_of = pd.Series(row, index=members.person_id.to_numpy(np.int64))

    def rows(self, person_ids) -> np.ndarray:
        return self._row_of.reindex(np.asarray(person_ids, dtype=np.int64)).fillna(-1).to_numpy(np.int64)

    def total(self, rows: np.ndarray, values=None) -> np.ndarray:
        ok = rows >= 0
        w = None if values is None else np.nan_to_num(np.asarray(values, dtype=float)[ok])
        out = np.bincount(rows[ok], weights=w, minlength=self.n)
        return out if values is not None else out.astype(np.int64)

    def maximum(self, rows: np.ndarray, values, empty: float = 0) -> np.ndarray:
        out = np.full(self.n, -np.inf)
        ok = rows >= 0
        np.maximum.at(out, rows[ok], np.nan_to_num(np.asarray(values, dtype=float)[ok], nan=-np.inf))
        return np.where(np.isfinite(out), out, empty)

    def persons(self, person_ids) -> np.ndarray:
        """Distinct members among ``person_ids`` per family."""
        ids = pd.unique(np.asarray(person_ids, dtype=np.int64))
        return self.total(self.rows(ids))


def _dates(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, errors="coerce")


def _latest_month(frame: pd.DataFrame) -> pd.DataFrame:
    """Payments of the latest period in the registry, one per person (duplicates dropped)."""
    if "period" in frame.columns and frame.period.notna().any():
        period = _dates(frame.period)
        frame = frame[period == period.max()]
    return frame[frame.person_id >= 0].drop_duplicates("person_id")


def family_features(store: Lake, members: pd.DataFrame, families: pd.DataFrame, persons: pd.DataFrame,
                    dictionary: FeatureDictionary, cat: Catalog, as_of: dt.date) -> pd.DataFrame:
    """The features as a DataFrame (see ``feature_columns``)."""
    F = feature_columns(store, members, families, persons, dictionary, cat, as_of)
    out = pd.DataFrame({name: F[name] for name in dictionary.names})
    return out.astype({name: ("object" if dtype == "str" else dtype) for name, dtype in dictionary.dtypes.items()})


_ARROW_TYPES = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(), "str": pa.string()}


def write_family_features(store: Lake, path: Path, members: pd.DataFrame, families: pd.DataFrame,
                          persons: pd.DataFrame, dictionary: FeatureDictionary, cat: Catalog,
                          as_of: dt.date) -> int:
    """Write the features to ``path`` (the file ``write_parquet`` of
    ``Table.from_pandas(family_features(...))`` would write: the same schema, pandas metadata and
    row groups) and return the number of families.

    The columns are computed with the numeric ones set aside on disk as they are made, next to
    ``path`` (``_Columns``), and the table is then made and written a slice of families at a
    time: neither the computed columns nor the table are ever held whole (at 20M persons they
    are 6.2M families x 150 columns, 7.5 GB)."""
    dtypes = dictionary.dtypes
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="family-features-", dir=path.parent) as spill:
        F = feature_columns(store, members, families, persons, dictionary, cat, as_of, spill_dir=Path(spill))
        n = len(F["family_id"])
        head = pd.DataFrame({name: np.asarray(F[name][:1000]) for name in dictionary.names}).astype(
            {name: ("object" if dtype == "str" else dtype) for name, dtype in dtypes.items()})
        metadata = pa.Table.from_pandas(head, preserve_index=False).schema.metadata

        def rows(start: int, stop: int) -> pa.Table:
            columns = {}
            for name in dictionary.names:
                values = np.asarray(F[name][start:stop])
                if dtypes[name] == "str":
                    columns[name] = pa.array(values.astype(object), type=pa.string(), from_pandas=True)
                else:
                    columns[name] = pa.array(values.astype(dtypes[name]), type=_ARROW_TYPES[dtypes[name]])
            return pa.table(columns).replace_schema_metadata(metadata)

        write_slices(path, (rows(s, min(s + FEATURE_SLICE, n)) for s in range(0, max(n, 1), FEATURE_SLICE)))
    return n


#: families per slice of the written table (a multiple of the lake's row group)
FEATURE_SLICE = ROW_GROUP


class _Columns:
    """The computed feature columns by name, in the order they were set.

    With a ``spill_dir``, a numeric column goes to disk as it is set (one ``.npy`` file, the
    values exactly as computed) and is mapped back when read; the text columns (a handful of
    shared strings per family) stay in memory. Without one, every column stays in memory. A
    column is set once (a file another section has mapped is never rewritten)."""

    def __init__(self, spill_dir: Path | None = None):
        self._dir = spill_dir
        self._held: dict[str, object] = {}
        self._files: dict[str, Path] = {}
        self._order: dict[str, None] = {}

    def __setitem__(self, name: str, values) -> None:
        if name in self._order:
            raise ValueError(f"feature column {name!r} computed twice")
        self._order[name] = None
        values = np.asarray(values)
        if self._dir is None or values.dtype == object:
            self._held[name] = values
            return
        self._files[name] = self._dir / f"{name}.npy"
        np.save(self._files[name], values, allow_pickle=False)

    def __getitem__(self, name: str):
        if name in self._held:
            return self._held[name]
        return np.load(self._files[name], mmap_mode="r")

    def __contains__(self, name: object) -> bool:
        return name in self._order

    def __iter__(self):
        return iter(self._order)


class _Sources:
    """What every section reads: registry rows with their family's row, and the members' ages.

    Each section of ``feature_columns`` is a function of its own, so the registry frames it
    reads are let go when it returns: at national size the frames of every section held to the
    end were most of the step's memory."""

    def __init__(self, store: Lake, fam: _Families, members: pd.DataFrame, persons: pd.DataFrame,
                 families: pd.DataFrame, prm, as_of: dt.date):
        self.store, self.fam, self.prm, self.as_of = store, fam, prm, as_of
        self.on = pd.Timestamp(as_of)
        self.crosswalk = Crosswalk.shared(store)
        self.families = families
        who = members[["person_id", "family_id", "role"]].merge(
            persons[["person_id", "sex", "birth_date"]], on="person_id", how="left")
        self.person_id = who.person_id.to_numpy(np.int64)
        self.row = fam.rows(self.person_id)
        self.age = age_years(who.birth_date, as_of)
        sex = who.sex.astype("object")
        self.male = sex.eq("M").to_numpy()
        self.female = sex.eq("F").to_numpy()
        self.sex = sex.fillna("").to_numpy()
        self.role = who.role.to_numpy()
        self.known = self.age >= 0
        self.adult = self.age >= 18
        self.is_head = isin(self.person_id, families.head_person_id.to_numpy(np.int64))

    def rows_of(self, registry: str, columns: list[str], group: str = "subject") -> pd.DataFrame:
        frame = person_rows(self.store, registry, columns, group, crosswalk=self.crosswalk)
        frame = frame[frame.person_id >= 0]
        return frame.assign(row=self.fam.rows(frame.person_id))[lambda f: f.row >= 0]

    def ids_in(self, *registries: str, group: str = "subject") -> np.ndarray:
        return np.concatenate([self.rows_of(r, [], group).person_id.to_numpy(np.int64) for r in registries])

    def among(self, person_ids) -> np.ndarray:
        """Which members are among ``person_ids``."""
        return isin(self.person_id, np.asarray(person_ids, dtype=np.int64))

    def age_of(self, person_ids) -> np.ndarray:
        """The age of each of ``person_ids`` (NaN for a non-member)."""
        return pd.Series(self.age, index=self.person_id).reindex(np.asarray(person_ids, dtype=np.int64)).to_numpy()


def feature_columns(store: Lake, members: pd.DataFrame, families: pd.DataFrame, persons: pd.DataFrame,
                    dictionary: FeatureDictionary, cat: Catalog, as_of: dt.date,
                    spill_dir: Path | None = None) -> dict[str, np.ndarray]:
    """``members``: person_id, family_id, role; ``families``: family_id, family_type, region,
    settlement_type, head_person_id (sorted by family_id); ``persons``: golden person_id, sex,
    birth_date. Returns the dictionary's columns, in order, one row per family; with a
    ``spill_dir`` the numeric ones are memory-mapped files in it (``_Columns``)."""
    families = families.sort_values("family_id", kind="mergesort").reset_index(drop=True)
    fam = _Families(members, families)
    src = _Sources(store, fam, members, persons, families, dictionary.parameters, as_of)
    F = _Columns(spill_dir)
    working_age = _composition(src, F)
    _residence(src, F)
    disabled_ids = _disability(src, F)
    student_ids = _education(src, F)
    ip_active_rows = _work_and_income(src, F, cat, working_age, student_ids, disabled_ids)
    del disabled_ids, student_ids, working_age
    _benefits(src, F)
    _real_estate(src, F)
    _vehicles_and_land(src, F)
    _livestock(src, F)
    _businesses(src, F, ip_active_rows)
    del ip_active_rows
    _credit_and_debt(src, F)
    _health_and_justice(src, F)

    missing = [n for n in dictionary.names if n not in F]
    extra = [n for n in F if n not in dictionary.dtypes]
    if missing or extra:
        raise ValueError(f"family_features out of step with the dictionary: missing {missing}, undocumented {extra}")
    return {name: F[name] for name in dictionary.names}


def _composition(src: _Sources, F: _Columns) -> np.ndarray:
    """Members and their ages. Returns which members are of working age."""
    fam, prm, row, age, known = src.fam, src.prm, src.row, src.age, src.known
    families = src.families
    pension_age = np.where(src.male, prm.pension_age_men, prm.pension_age_women)
    age_pension = (known & (age >= pension_age)) | src.among(src.ids_in("gcvp_pensions"))
    working_age = src.adult & ~age_pension
    is_head = src.is_head

    F["family_id"] = fam.family_id
    F["region"] = families.region.astype("object").to_numpy()
    F["settlement_type"] = families.settlement_type.astype("object").to_numpy()
    F["family_type"] = families.family_type.astype("object").to_numpy()
    F["members"] = fam.total(row)
    F["adults"] = fam.total(row[src.adult])
    F["children_under_18"] = fam.total(row[known & (age < 18)])
    F["children_under_1"] = fam.total(row[known & (age < 1)])
    F["children_1_6"] = fam.total(row[(age >= 1) & (age <= 6)])
    F["children_school_age"] = fam.total(row[(age >= 6) & (age <= 17)])
    F["children_18_23"] = fam.total(row[(src.role == "child") & (age >= 18) & (age <= 23)])
    F["working_age_adults"] = fam.total(row[working_age])
    F["pensioners"] = fam.total(row[age_pension])
    F["men"] = fam.total(row[src.male])
    F["women"] = fam.total(row[src.female])
    head_age = np.zeros(fam.n, np.int64)
    head_age[row[is_head]] = age[is_head]
    F["head_age"] = head_age
    head_sex = np.full(fam.n, "", dtype=object)
    head_sex[row[is_head]] = src.sex[is_head]
    F["head_sex"] = head_sex
    F["mean_age"] = np.round(fam.total(row[known], age[known]) / np.maximum(fam.total(row[known]), 1), 2)
    F["youngest_age"] = (-fam.maximum(row[known], -age[known])).astype(np.int64)
    F["oldest_age"] = fam.maximum(row[known], age[known]).astype(np.int64)
    dependants = F["children_under_18"] + F["pensioners"]
    F["dependency_ratio"] = np.round(np.where(F["working_age_adults"] > 0, dependants / np.maximum(F["working_age_adults"], 1),
                                              F["members"]), 4)
    F["large_family"] = F["children_under_18"] >= prm.large_family_minors
    F["single_parent"] = F["family_type"] == "single_parent"
    return working_age


def _residence(src: _Sources, F: _Columns) -> None:
    """Citizenship and registration."""
    fam = src.fam
    fl = src.rows_of("gbd_fl", ["citizenship"]).drop_duplicates("person_id")
    F["foreign_members"] = fam.persons(fl.person_id[fl.citizenship.astype("object") == "foreign"])
    kandas = np.concatenate([fl.person_id[fl.citizenship.astype("object") == "kandas"].to_numpy(np.int64),
                             src.ids_in("kandas_register")])
    F["kandas_members"] = fam.persons(kandas)
    adr = src.rows_of("address_register", ["registered_since", "registration"])
    adr = adr.assign(since=_dates(adr.registered_since)).sort_values(["person_id", "since", "record_id"],
                                                                     ascending=[True, False, False], kind="mergesort")
    adr = adr.drop_duplicates("person_id")
    F["temporary_registration_members"] = fam.persons(adr.person_id[adr.registration.astype("object") != "permanent"])
    head_adr = adr[adr.person_id.isin(src.families.head_person_id)]
    years = np.zeros(fam.n)
    years[head_adr.row.to_numpy()] = ((src.on - head_adr.since).dt.days / 365.25).fillna(0).to_numpy()
    F["registered_years_head"] = np.round(years, 2)


def _disability(src: _Sources, F: _Columns) -> np.ndarray:
    """Disability groups and care. Returns the persons with a disability group."""
    fam = src.fam
    dis = src.rows_of("cbdi_disability", ["disability_group", "established_date"])
    dis = dis.assign(g=pd.to_numeric(dis.disability_group, errors="coerce"), d=_dates(dis.established_date))
    dis = dis[dis.g > 0].sort_values(["person_id", "d", "record_id"], ascending=[True, False, False],
                                     kind="mergesort").drop_duplicates("person_id")
    dis_age = src.age_of(dis.person_id)
    F["disabled_members"] = fam.total(dis.row.to_numpy())
    F["disabled_children"] = fam.total(dis.row.to_numpy()[(dis_age >= 0) & (dis_age < 18)])
    F["disabled_adults"] = fam.total(dis.row.to_numpy()[dis_age >= 18])
    for g in (1, 2, 3):
        F[f"disabled_group{g}"] = fam.total(dis.row.to_numpy()[dis.g.to_numpy() == g])
    F["incapable_members"] = fam.persons(src.ids_in("incapacity_register"))
    F["social_services_at_home_members"] = fam.persons(src.ids_in("social_services_at_home"))
    return dis.person_id.to_numpy(np.int64)


def _education(src: _Sources, F: _Columns) -> np.ndarray:
    """Schools, colleges, universities. Returns the persons enrolled in a university or college."""
    fam, row, age = src.fam, src.row, src.age
    F["preschool_enrolled"] = fam.persons(src.ids_in("preschool_enrolment"))
    school = src.ids_in("nobd_schools")
    home = src.ids_in("home_schooling_disabled")
    F["school_pupils"] = fam.persons(school)
    in_school = src.among(np.concatenate([school, home]))
    F["school_age_not_enrolled"] = fam.total(row[(age >= 7) & (age <= 17) & ~in_school])
    uni = src.rows_of("higher_education_platform", ["study_form"])
    col = src.rows_of("tvet_colleges", ["study_form"])
    F["students_university"] = fam.persons(uni.person_id)
    F["students_college"] = fam.persons(col.person_id)
    full = pd.concat([uni, col])
    F["students_full_time"] = fam.persons(full.person_id[full.study_form.astype("object").fillna("full_time") == "full_time"])
    F["students_in_dormitory"] = fam.persons(src.ids_in("student_dormitories"))
    F["home_schooled_disabled"] = fam.persons(home)
    F["school_meals_children"] = fam.persons(src.ids_in("school_meals"))
    F["summer_camp_children"] = fam.persons(src.ids_in("summer_camps"))
    uni_age = src.age_of(uni.person_id)
    F["adults_higher_education"] = fam.persons(uni.person_id[uni_age >= 18])
    return np.concatenate([uni.person_id.to_numpy(np.int64), col.person_id.to_numpy(np.int64)])


def _work_and_income(src: _Sources, F: _Columns, cat: Catalog, working_age: np.ndarray, student_ids: np.ndarray,
                     disabled_ids: np.ndarray) -> np.ndarray:
    """Employment, income and the poverty line. Returns the family rows of active sole proprietors."""
    fam, prm, row = src.fam, src.prm, src.row
    rows_of, ids_in = src.rows_of, src.ids_in
    # ---------------------------------------------------------------- employment
    esutd = rows_of("esutd_labour_contracts", ["employer_bin", "wage"])
    enpf = rows_of("enpf_pension_contributions", ["employer_bin", "contribution", "period"])
    working = np.concatenate([esutd.person_id.to_numpy(np.int64), enpf.person_id.to_numpy(np.int64)])
    F["working_adults"] = fam.persons(working)
    F["unemployed_adults"] = fam.persons(ids_in("unemployed_register"))
    F["employment_programme_members"] = fam.persons(ids_in("employment_programmes"))
    F["working_pensioners"] = fam.persons(ids_in("pension_age_workers"))
    idle = working_age & ~src.among(working) & ~src.among(student_ids) & ~src.among(disabled_ids)
    F["not_working_working_age"] = fam.total(row[idle])
    F["civil_servants"] = fam.persons(ids_in("civil_service_register"))
    F["law_enforcement_members"] = fam.persons(ids_in(*LAW_ENFORCEMENT))
    F["public_sector_members"] = fam.persons(ids_in("teachers_register", "medical_workers_register"))
    emp = esutd[esutd.employer_bin.notna()].drop_duplicates(["row", "employer_bin"])
    F["employers_distinct"] = fam.total(emp.row.to_numpy())
    F["employment_rate"] = np.round(np.where(F["working_age_adults"] > 0,
                                             F["working_adults"] / np.maximum(F["working_age_adults"], 1), 0.0), 4)

    # ---------------------------------------------------------------- income
    contract = esutd.drop_duplicates(["person_id", "employer_bin"]).groupby("person_id").wage.sum()
    enpf = enpf[_dates(enpf.period) == _dates(enpf.period).max()] if enpf.period.notna().any() else enpf
    from_enpf = (enpf.drop_duplicates(["person_id", "employer_bin"]).groupby("person_id").contribution.sum()
                 / prm.pension_contribution_rate)
    tax = rows_of("kgd_income_tax", ["employer_bin", "income"])
    from_tax = tax.drop_duplicates(["person_id", "employer_bin"]).groupby("person_id").income.sum()
    wage = contract.combine_first(from_enpf).combine_first(from_tax)
    wage = wage[wage > 0]
    F["income_wage"] = np.round(fam.total(fam.rows(wage.index), wage.to_numpy()), 0)

    def monthly(registries) -> pd.DataFrame:
        frames = [_latest_month(rows_of(r, ["amount", "period"])).assign(registry=r) for r in registries]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["person_id", "row", "amount"])

    pensions = monthly(PENSION_REGISTRIES)
    F["income_pension"] = np.round(fam.total(pensions.row.to_numpy(), pensions.amount.to_numpy()), 0)
    benefits = monthly(INCOME_BENEFITS)
    F["income_benefits"] = np.round(fam.total(benefits.row.to_numpy(), benefits.amount.to_numpy()), 0)
    ip = rows_of("sole_proprietors", ["bin", "status", "revenue"], "owner")
    ip = ip.drop_duplicates(["row", "bin"])
    ip_active = ip[ip.status.astype("object") == "active"]
    F["business_revenue"] = np.round(fam.total(ip_active.row.to_numpy(), ip_active.revenue.to_numpy()), 0)
    F["income_business"] = np.round(F["business_revenue"] * prm.business_income_margin / 12, 0)
    members_n = np.maximum(F["members"], 1)
    asp = benefits[benefits.registry == "asp_payments"]
    F["asp_amount"] = np.round(fam.total(asp.row.to_numpy(), asp.amount.to_numpy()), 0)
    total = F["income_wage"] + F["income_pension"] + F["income_benefits"] + F["income_business"]
    F["income_total"] = np.round(total, 0)
    F["income_pc"] = np.round(total / members_n, 0)
    F["income_wage_pc"] = np.round(F["income_wage"] / members_n, 0)
    F["income_pension_pc"] = np.round(F["income_pension"] / members_n, 0)
    F["income_benefits_pc"] = np.round(F["income_benefits"] / members_n, 0)
    F["income_business_pc"] = np.round(F["income_business"] / members_n, 0)
    F["income_pc_no_asp"] = np.round((total - F["asp_amount"]) / members_n, 0)
    F["income_taxed"] = np.round(fam.total(fam.rows(from_tax.index), from_tax.to_numpy()), 0)
    decl = rows_of("kgd_declarations", ["declared_income", "assets_abroad"]).drop_duplicates("person_id")
    F["income_declared"] = np.round(fam.total(decl.row.to_numpy(), decl.declared_income.to_numpy()), 0)
    F["assets_abroad_members"] = fam.persons(decl.person_id[decl.assets_abroad.astype("boolean").fillna(False).to_numpy(bool)])
    F["pension_contributions"] = np.round(fam.total(fam.rows(from_enpf.index), from_enpf.to_numpy() * prm.pension_contribution_rate), 0)
    gfss = rows_of("gfss_social_insurance", ["employer_bin", "contribution"]).drop_duplicates(["person_id", "employer_bin"])
    F["social_insurance_contributions"] = np.round(fam.total(gfss.row.to_numpy(), gfss.contribution.to_numpy()), 0)
    earner_ids = np.concatenate([wage.index.to_numpy(np.int64), pensions.person_id.to_numpy(np.int64),
                                 benefits.person_id.to_numpy(np.int64), ip_active.person_id.to_numpy(np.int64)])
    F["earners"] = fam.persons(earner_ids)
    money = cat.money_on(src.as_of)
    sm = float(money.subsistence_minimum)
    F["subsistence_minimum"] = np.full(fam.n, sm)
    F["income_pc_to_subsistence"] = np.round(F["income_pc"] / sm, 4)
    median = pd.Series({r.iso: float(r.median_income) for r in cat.regions}).reindex(F["region"]).to_numpy()
    line = np.maximum(prm.asp_median_share * np.nan_to_num(median, nan=0.0), prm.asp_subsistence_floor * sm)
    F["asp_poverty_line"] = np.round(line, 0)
    F["income_below_poverty_line"] = F["income_pc_no_asp"] < line
    F["income_above_4_subsistence"] = F["income_pc"] > prm.income_rich_subsistence_minimums * sm
    return ip_active.row.to_numpy()


def _benefits(src: _Sources, F: _Columns) -> None:
    """Benefits received in the reference month."""
    fam, rows_of, ids_in = src.fam, src.rows_of, src.ids_in
    received = np.zeros(fam.n, np.int64)
    for flag, registry in BENEFIT_REGISTRIES.items():
        got = fam.persons(_latest_month(rows_of(registry, ["period"])).person_id) > 0
        received += got
        if not flag.startswith("_"):
            F[flag] = got
    F["benefits_received"] = received
    F["athlete_lifelong_members"] = fam.persons(ids_in("athletes_lifelong_payments"))
    F["students_with_stipend"] = fam.persons(ids_in("student_stipends"))
    surv = rows_of("gcvp_survivor_benefits", [])
    surv_age = src.age_of(surv.person_id)
    F["survivor_benefit_children"] = fam.persons(surv.person_id[(surv_age >= 0) & (surv_age < 18)])


def _real_estate(src: _Sources, F: _Columns) -> None:
    """Housing and other real estate owned, bought and sold."""
    fam, prm, rows_of, ids_in = src.fam, src.prm, src.rows_of, src.ids_in
    on = src.on
    lookback = on - pd.DateOffset(years=prm.housing_lookback_years)
    rn = rows_of("gbd_rn_real_estate", ["cadastral_no", "kind", "area_m2", "acquired_date", "disposed_date", "value"], "owner")
    rn = rn.assign(acq=_dates(rn.acquired_date), dsp=_dates(rn.disposed_date)).drop_duplicates(["row", "cadastral_no"])
    now = rn[rn.dsp.isna() | (rn.dsp > on)]
    home_now = now[now.kind.astype("object").isin(RESIDENTIAL)]
    F["housing_units"] = fam.total(home_now.row.to_numpy())
    F["housing_area_m2"] = np.round(fam.total(home_now.row.to_numpy(), home_now.area_m2.to_numpy()), 1)
    F["housing_area_pc"] = np.round(F["housing_area_m2"] / np.maximum(F["members"], 1), 2)
    F["commercial_units"] = fam.total(now.row.to_numpy()[now.kind.astype("object").to_numpy() == "commercial"])
    F["real_estate_value"] = np.round(fam.total(now.row.to_numpy(), now.value.to_numpy()), 0)
    sold = rn[rn.dsp.notna() & (rn.dsp >= lookback) & (rn.dsp <= on) & rn.kind.astype("object").isin(RESIDENTIAL)]
    deals = rows_of("notary_deals", ["cadastral_no", "deal_date"], "owner")
    deals = deals[(_dates(deals.deal_date) >= lookback) & (_dates(deals.deal_date) <= on)]
    gone = pd.concat([sold[["row", "cadastral_no"]], deals[["row", "cadastral_no"]]]).drop_duplicates()
    F["housing_disposed_last_5y"] = fam.total(gone.row.to_numpy())
    F["housing_acquired_last_5y"] = fam.total(home_now.row.to_numpy()[(home_now.acq >= lookback).to_numpy()])
    F["owned_housing_last_5y"] = (F["housing_units"] > 0) | (F["housing_disposed_last_5y"] > 0)
    ptax = rows_of("kgd_property_tax", ["cadastral_no", "tax_amount"], "owner").drop_duplicates(["row", "cadastral_no"])
    F["property_tax"] = np.round(fam.total(ptax.row.to_numpy(), ptax.tax_amount.to_numpy()), 0)
    F["no_housing"] = F["housing_units"] == 0
    F["housing_queue_members"] = fam.persons(ids_in(*HOUSING_QUEUES))


def _vehicles_and_land(src: _Sources, F: _Columns) -> None:
    """Vehicles, driving licences, land and farms."""
    fam, rows_of, ids_in = src.fam, src.rows_of, src.ids_in
    veh = rows_of("vehicle_register", ["vin", "model_year", "value"], "owner").drop_duplicates(["row", "vin"])
    F["vehicles"] = fam.total(veh.row.to_numpy())
    F["vehicle_value"] = np.round(fam.total(veh.row.to_numpy(), veh.value.to_numpy()), 0)
    F["newest_vehicle_year"] = fam.maximum(veh.row.to_numpy(), veh.model_year.to_numpy()).astype(np.int64)
    F["driving_licence_holders"] = fam.persons(ids_in("driving_licences"))
    land = rows_of("egkn_land_cadastre", ["cadastral_no", "area_ha", "purpose"], "owner").drop_duplicates(["row", "cadastral_no"])
    purpose = land.purpose.astype("object").to_numpy()
    F["land_plots"] = fam.total(land.row.to_numpy())
    F["land_area_ha"] = np.round(fam.total(land.row.to_numpy(), land.area_ha.to_numpy()), 3)
    F["land_agricultural_ha"] = np.round(fam.total(land.row.to_numpy()[purpose == "agricultural"],
                                                   land.area_ha.to_numpy()[purpose == "agricultural"]), 3)
    F["land_household_ha"] = np.round(fam.total(land.row.to_numpy()[purpose == "household"],
                                                land.area_ha.to_numpy()[purpose == "household"]), 3)
    farms = rows_of("farm_register", ["area_ha"], "owner").drop_duplicates(["row", "area_ha"])
    F["farms"] = fam.total(farms.row.to_numpy())


def _livestock(src: _Sources, F: _Columns) -> None:
    """Linked animals per species, and livestock subsidies.

    The animal records stay in Arrow and integer codes (9M records at 5M persons: as pandas
    text they were the section's 1.5 GB)."""
    fam, prm, rows_of = src.fam, src.prm, src.rows_of
    animals_path = src.store.table("resolution", "animal_records")
    heads = {s: np.zeros(fam.n, np.int64) for s in prm.livestock_units}
    if animals_path.exists():
        animals = pq.read_table(animals_path, columns=["registry", "record_id", "species", "animal_key"])
        # each animal record's owner through the crosswalk (records without one are left out)
        registry, registries = dictionary_codes(animals.column("registry"))
        owner = np.full(len(animals), -1, dtype=np.int64)
        record_id = animals.column("record_id")
        for k, r in enumerate(registries.to_pylist()):
            at = np.flatnonzero(registry == k)
            owner[at] = src.crosswalk.person_ids(r, "owner", record_id.take(pa.array(at)).cast(pa.large_string()))
        del registry, record_id
        row = np.full(len(animals), -1, dtype=np.int64)
        row[owner >= 0] = fam.rows(owner[owner >= 0])
        keep = np.flatnonzero(row >= 0)
        del owner
        row = row[keep]
        key = dictionary_codes(animals.column("animal_key").take(pa.array(keep)))[0]
        species, names = dictionary_codes(animals.column("species").take(pa.array(keep)))
        del animals, keep
        # an animal's species: the one most of its records give (ties: alphabetical)
        names = names.to_pylist()
        alphabetical = np.argsort(np.argsort(np.array(names, dtype=object), kind="stable"), kind="stable")
        rank = np.where(species >= 0, alphabetical[np.maximum(species, 0)] if names else -1, -1)
        records = pd.DataFrame({"key": key, "rank": rank})
        votes = records[(key >= 0) & (rank >= 0)].groupby(["key", "rank"], sort=False).size().rename("n").reset_index()
        votes = votes.sort_values(["key", "n", "rank"], ascending=[True, False, True], kind="mergesort")
        votes = votes.drop_duplicates("key")
        voted = np.full(int(key.max()) + 1 if len(key) else 0, -1, dtype=np.int64)
        voted[votes.key.to_numpy()] = votes["rank"].to_numpy()
        owned = pd.DataFrame({"row": row, "key": key})[key >= 0].drop_duplicates()
        owned_rank = voted[owned.key.to_numpy()]
        by_rank = dict(zip(alphabetical.tolist(), names))
        for r, s in by_rank.items():
            if s in heads:
                heads[s] = fam.total(owned.row.to_numpy()[owned_rank == r])
    F["livestock_heads"] = sum(heads.values())
    F["livestock_cattle"], F["livestock_sheep"], F["livestock_goats"] = heads["cattle"], heads["sheep"], heads["goat"]
    F["livestock_horses"], F["livestock_camels"] = heads["horse"], heads["camel"]
    F["livestock_units"] = np.round(sum(heads[s] * w for s, w in prm.livestock_units.items()), 2)
    sub = rows_of("livestock_subsidies", ["tag", "subsidy"], "owner").drop_duplicates(["row", "tag"])
    F["livestock_subsidy"] = np.round(fam.total(sub.row.to_numpy(), sub.subsidy.to_numpy()), 0)


def _businesses(src: _Sources, F: _Columns, ip_active_rows: np.ndarray) -> None:
    """Active legal entities and sole proprietors."""
    fam, rows_of = src.fam, src.rows_of
    llp = rows_of("gbd_ul_legal_entities", ["bin", "status"], "owner").drop_duplicates(["row", "bin"])
    F["legal_entities_active"] = fam.total(llp.row.to_numpy()[llp.status.astype("object").to_numpy() == "active"])
    F["sole_proprietors_active"] = fam.total(ip_active_rows)
    F["businesses_active"] = F["legal_entities_active"] + F["sole_proprietors_active"]


def _credit_and_debt(src: _Sources, F: _Columns) -> None:
    """Loans, overdue debt, enforcement, deposits."""
    fam, rows_of = src.fam, src.rows_of
    pkb = rows_of("pkb_credit_bureau", ["lender_bin", "amount", "balance", "overdue_days", "issued_date"], "borrower")
    pkb = pkb.drop_duplicates(["person_id", "lender_bin", "amount", "issued_date"])
    overdue = pkb.overdue_days.fillna(0).to_numpy() > 0
    F["loans"] = fam.total(pkb.row.to_numpy())
    F["loan_balance"] = np.round(fam.total(pkb.row.to_numpy(), pkb.balance.to_numpy()), 0)
    F["overdue_loans"] = fam.total(pkb.row.to_numpy()[overdue])
    F["overdue_debt"] = np.round(fam.total(pkb.row.to_numpy()[overdue], pkb.balance.to_numpy()[overdue]), 0)
    F["overdue_90d_loans"] = fam.total(pkb.row.to_numpy()[pkb.overdue_days.fillna(0).to_numpy() > 90])
    gkb = rows_of("gkb_credit_bureau", ["amount", "overdue_days"], "borrower")
    micro = rows_of("microcredit_register", ["amount", "overdue_days"], "borrower").drop_duplicates(["person_id", "amount", "overdue_days"])
    od = pd.concat([pkb[["row", "overdue_days"]], gkb[["row", "overdue_days"]], micro[["row", "overdue_days"]]])
    F["max_overdue_days"] = fam.maximum(od.row.to_numpy(), od.overdue_days.fillna(0).to_numpy()).astype(np.int64)
    F["microcredits"] = fam.total(micro.row.to_numpy())
    debtors = rows_of("debtors_register", ["debt"], "borrower").drop_duplicates(["person_id", "debt"])
    F["debtor_records"] = fam.total(debtors.row.to_numpy())
    F["debtor_debt"] = np.round(fam.total(debtors.row.to_numpy(), debtors.debt.to_numpy()), 0)
    enf = rows_of("enforcement_proceedings", ["claim"], "borrower").drop_duplicates(["person_id", "claim"])
    F["enforcement_proceedings"] = fam.total(enf.row.to_numpy())
    F["enforcement_claims"] = np.round(fam.total(enf.row.to_numpy(), enf.claim.to_numpy()), 0)
    arrears = rows_of("kgd_tax_arrears", ["arrears"]).drop_duplicates("person_id")
    F["tax_arrears"] = np.round(fam.total(arrears.row.to_numpy(), arrears.arrears.to_numpy()), 0)
    dep = rows_of("bank_deposits", ["balance"]).drop_duplicates(["person_id", "balance"])
    F["bank_deposits"] = np.round(fam.total(dep.row.to_numpy(), dep.balance.to_numpy()), 0)


def _health_and_justice(src: _Sources, F: _Columns) -> None:
    """Health registers, insurance, offences, military service."""
    fam, rows_of, ids_in = src.fam, src.rows_of, src.ids_in
    crim = rows_of("criminal_records", ["expunged"])
    F["criminal_record_members"] = fam.persons(crim.person_id[~crim.expunged.astype("boolean").fillna(False).to_numpy(bool)])
    F["psychiatric_members"] = fam.persons(ids_in("psychiatric_register"))
    F["narcological_members"] = fam.persons(ids_in("narcological_register"))
    F["tuberculosis_members"] = fam.persons(ids_in("tuberculosis_register"))
    fsms = rows_of("fsms_health_insurance", ["insured"])
    insured = set(fsms.person_id[fsms.insured.astype("boolean").fillna(False).to_numpy(bool)].tolist())
    F["health_uninsured_members"] = fam.persons(fsms.person_id[~fsms.person_id.isin(insured)])
    row, age = src.row, src.age
    attached = src.among(ids_in("rpn_attached_population"))
    F["clinic_unattached_members"] = fam.total(row[~attached])
    F["pregnant_members"] = fam.persons(ids_in("pregnancy_register", group="mother"))
    vaccinated = src.among(ids_in("child_vaccinations"))
    F["unvaccinated_children_under_7"] = fam.total(row[src.known & (age < 7) & ~vaccinated])
    F["administrative_offences"] = fam.total(rows_of("administrative_offences", []).row.to_numpy())
    F["border_crossings"] = fam.total(rows_of("border_crossings", []).row.to_numpy())
    F["military_conscripts"] = fam.persons(ids_in("military_register"))

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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from family_pipeline.catalog import Catalog
from family_pipeline.families.dictionary import FeatureDictionary
from family_pipeline.families.formation import age_years
from family_pipeline.families.sources import Crosswalk, person_rows
from family_pipeline.lib.lake import Lake

__all__ = ["BENEFIT_REGISTRIES", "PENSION_REGISTRIES", "family_feature_table", "family_features", "feature_columns"]

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


def family_feature_table(store: Lake, members: pd.DataFrame, families: pd.DataFrame, persons: pd.DataFrame,
                         dictionary: FeatureDictionary, cat: Catalog, as_of: dt.date) -> pa.Table:
    """The features as an Arrow table, built column by column while the computed columns are let
    go (no DataFrame copy of the whole table: at national scale it is 6M families x 150 columns).
    The same table, schema and pandas metadata as ``Table.from_pandas(family_features(...))``."""
    F = feature_columns(store, members, families, persons, dictionary, cat, as_of)
    dtypes = dictionary.dtypes
    head = pd.DataFrame({name: np.asarray(F[name][:1000]) for name in dictionary.names}).astype(
        {name: ("object" if dtype == "str" else dtype) for name, dtype in dtypes.items()})
    metadata = pa.Table.from_pandas(head, preserve_index=False).schema.metadata
    columns = {}
    for name in dictionary.names:
        values = np.asarray(F.pop(name))
        if dtypes[name] == "str":
            columns[name] = pa.array(values.astype(object), type=pa.string(), from_pandas=True)
        else:
            columns[name] = pa.array(values.astype(dtypes[name]), type=_ARROW_TYPES[dtypes[name]])
        del values
    return pa.table(columns).replace_schema_metadata(metadata)


def feature_columns(store: Lake, members: pd.DataFrame, families: pd.DataFrame, persons: pd.DataFrame,
                    dictionary: FeatureDictionary, cat: Catalog, as_of: dt.date) -> dict[str, np.ndarray]:
    """``members``: person_id, family_id, role; ``families``: family_id, family_type, region,
    settlement_type, head_person_id (sorted by family_id); ``persons``: golden person_id, sex,
    birth_date. Returns the dictionary's columns, in order, one row per family."""
    prm = dictionary.parameters
    families = families.sort_values("family_id", kind="mergesort").reset_index(drop=True)
    fam = _Families(members, families)
    F: dict[str, np.ndarray] = {}
    on = pd.Timestamp(as_of)
    crosswalk = Crosswalk.shared(store)

    def rows_of(registry: str, columns: list[str], group: str = "subject") -> pd.DataFrame:
        frame = person_rows(store, registry, columns, group, crosswalk=crosswalk)
        frame = frame[frame.person_id >= 0]
        return frame.assign(row=fam.rows(frame.person_id))[lambda f: f.row >= 0]

    def ids_in(*registries: str, group: str = "subject") -> np.ndarray:
        return np.concatenate([rows_of(r, [], group).person_id.to_numpy(np.int64) for r in registries])

    # ---------------------------------------------------------------- members and their ages
    who = members[["person_id", "family_id", "role"]].merge(
        persons[["person_id", "sex", "birth_date"]], on="person_id", how="left")
    row = fam.rows(who.person_id)
    age = age_years(who.birth_date, as_of)
    male = who.sex.astype("object").eq("M").to_numpy()
    pension_age = np.where(male, prm.pension_age_men, prm.pension_age_women)
    adult = age >= 18
    known = age >= 0
    pensioner_ids = set(ids_in("gcvp_pensions").tolist())
    age_pension = (known & (age >= pension_age)) | who.person_id.isin(pensioner_ids).to_numpy()
    working_age = adult & ~age_pension
    is_head = who.person_id.isin(families.head_person_id).to_numpy()

    F["family_id"] = fam.family_id
    F["region"] = families.region.astype("object").to_numpy()
    F["settlement_type"] = families.settlement_type.astype("object").to_numpy()
    F["family_type"] = families.family_type.astype("object").to_numpy()
    F["members"] = fam.total(row)
    F["adults"] = fam.total(row[adult])
    F["children_under_18"] = fam.total(row[known & (age < 18)])
    F["children_under_1"] = fam.total(row[known & (age < 1)])
    F["children_1_6"] = fam.total(row[(age >= 1) & (age <= 6)])
    F["children_school_age"] = fam.total(row[(age >= 6) & (age <= 17)])
    F["children_18_23"] = fam.total(row[(who.role.to_numpy() == "child") & (age >= 18) & (age <= 23)])
    F["working_age_adults"] = fam.total(row[working_age])
    F["pensioners"] = fam.total(row[age_pension])
    F["men"] = fam.total(row[male])
    F["women"] = fam.total(row[who.sex.astype("object").eq("F").to_numpy()])
    head_age = np.zeros(fam.n, np.int64)
    head_age[row[is_head]] = age[is_head]
    F["head_age"] = head_age
    head_sex = np.full(fam.n, "", dtype=object)
    head_sex[row[is_head]] = who.sex.astype("object").fillna("").to_numpy()[is_head]
    F["head_sex"] = head_sex
    F["mean_age"] = np.round(fam.total(row[known], age[known]) / np.maximum(fam.total(row[known]), 1), 2)
    F["youngest_age"] = (-fam.maximum(row[known], -age[known])).astype(np.int64)
    F["oldest_age"] = fam.maximum(row[known], age[known]).astype(np.int64)
    dependants = F["children_under_18"] + F["pensioners"]
    F["dependency_ratio"] = np.round(np.where(F["working_age_adults"] > 0, dependants / np.maximum(F["working_age_adults"], 1),
                                              F["members"]), 4)
    F["large_family"] = F["children_under_18"] >= prm.large_family_minors
    F["single_parent"] = F["family_type"] == "single_parent"

    fl = rows_of("gbd_fl", ["citizenship"]).drop_duplicates("person_id")
    F["foreign_members"] = fam.persons(fl.person_id[fl.citizenship.astype("object") == "foreign"])
    kandas = np.concatenate([fl.person_id[fl.citizenship.astype("object") == "kandas"].to_numpy(np.int64), ids_in("kandas_register")])
    F["kandas_members"] = fam.persons(kandas)
    adr = rows_of("address_register", ["registered_since", "registration"])
    adr = adr.assign(since=_dates(adr.registered_since)).sort_values(["person_id", "since", "record_id"],
                                                                     ascending=[True, False, False], kind="mergesort")
    adr = adr.drop_duplicates("person_id")
    F["temporary_registration_members"] = fam.persons(adr.person_id[adr.registration.astype("object") != "permanent"])
    head_adr = adr[adr.person_id.isin(families.head_person_id)]
    years = np.zeros(fam.n)
    years[head_adr.row.to_numpy()] = ((on - head_adr.since).dt.days / 365.25).fillna(0).to_numpy()
    F["registered_years_head"] = np.round(years, 2)

    # ---------------------------------------------------------------- disability
    dis = rows_of("cbdi_disability", ["disability_group", "established_date"])
    dis = dis.assign(g=pd.to_numeric(dis.disability_group, errors="coerce"), d=_dates(dis.established_date))
    dis = dis[dis.g > 0].sort_values(["person_id", "d", "record_id"], ascending=[True, False, False],
                                     kind="mergesort").drop_duplicates("person_id")
    dis_age = pd.Series(age, index=who.person_id.to_numpy()).reindex(dis.person_id).to_numpy()
    F["disabled_members"] = fam.total(dis.row.to_numpy())
    F["disabled_children"] = fam.total(dis.row.to_numpy()[(dis_age >= 0) & (dis_age < 18)])
    F["disabled_adults"] = fam.total(dis.row.to_numpy()[dis_age >= 18])
    for g in (1, 2, 3):
        F[f"disabled_group{g}"] = fam.total(dis.row.to_numpy()[dis.g.to_numpy() == g])
    F["incapable_members"] = fam.persons(ids_in("incapacity_register"))
    F["social_services_at_home_members"] = fam.persons(ids_in("social_services_at_home"))

    # ---------------------------------------------------------------- education
    F["preschool_enrolled"] = fam.persons(ids_in("preschool_enrolment"))
    school = ids_in("nobd_schools")
    home = ids_in("home_schooling_disabled")
    F["school_pupils"] = fam.persons(school)
    in_school = who.person_id.isin(np.concatenate([school, home])).to_numpy()
    F["school_age_not_enrolled"] = fam.total(row[(age >= 7) & (age <= 17) & ~in_school])
    uni = rows_of("higher_education_platform", ["study_form"])
    col = rows_of("tvet_colleges", ["study_form"])
    F["students_university"] = fam.persons(uni.person_id)
    F["students_college"] = fam.persons(col.person_id)
    full = pd.concat([uni, col])
    F["students_full_time"] = fam.persons(full.person_id[full.study_form.astype("object").fillna("full_time") == "full_time"])
    F["students_in_dormitory"] = fam.persons(ids_in("student_dormitories"))
    F["home_schooled_disabled"] = fam.persons(home)
    F["school_meals_children"] = fam.persons(ids_in("school_meals"))
    F["summer_camp_children"] = fam.persons(ids_in("summer_camps"))
    uni_age = pd.Series(age, index=who.person_id.to_numpy()).reindex(uni.person_id).to_numpy()
    F["adults_higher_education"] = fam.persons(uni.person_id[uni_age >= 18])

    # ---------------------------------------------------------------- employment
    esutd = rows_of("esutd_labour_contracts", ["employer_bin", "wage"])
    enpf = rows_of("enpf_pension_contributions", ["employer_bin", "contribution", "period"])
    working = np.concatenate([esutd.person_id.to_numpy(np.int64), enpf.person_id.to_numpy(np.int64)])
    F["working_adults"] = fam.persons(working)
    F["unemployed_adults"] = fam.persons(ids_in("unemployed_register"))
    F["employment_programme_members"] = fam.persons(ids_in("employment_programmes"))
    F["working_pensioners"] = fam.persons(ids_in("pension_age_workers"))
    student_ids = np.concatenate([uni.person_id.to_numpy(np.int64), col.person_id.to_numpy(np.int64)])
    idle = working_age & ~who.person_id.isin(working).to_numpy() & ~who.person_id.isin(student_ids).to_numpy() \
        & ~who.person_id.isin(dis.person_id).to_numpy()
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
    money = cat.money_on(as_of)
    sm = float(money.subsistence_minimum)
    F["subsistence_minimum"] = np.full(fam.n, sm)
    F["income_pc_to_subsistence"] = np.round(F["income_pc"] / sm, 4)
    median = pd.Series({r.iso: float(r.median_income) for r in cat.regions}).reindex(F["region"]).to_numpy()
    line = np.maximum(prm.asp_median_share * np.nan_to_num(median, nan=0.0), prm.asp_subsistence_floor * sm)
    F["asp_poverty_line"] = np.round(line, 0)
    F["income_below_poverty_line"] = F["income_pc_no_asp"] < line
    F["income_above_4_subsistence"] = F["income_pc"] > prm.income_rich_subsistence_minimums * sm

    # ---------------------------------------------------------------- benefits
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
    surv_age = pd.Series(age, index=who.person_id.to_numpy()).reindex(surv.person_id).to_numpy()
    F["survivor_benefit_children"] = fam.persons(surv.person_id[(surv_age >= 0) & (surv_age < 18)])

    # ---------------------------------------------------------------- real estate
    lookback = on - pd.DateOffset(years=prm.housing_lookback_years)
    rn = rows_of("gbd_rn_real_estate", ["cadastral_no", "kind", "area_m2", "acquired_date", "disposed_date", "value"], "owner")
    rn = rn.assign(acq=_dates(rn.acquired_date), dsp=_dates(rn.disposed_date)).drop_duplicates(["row", "cadastral_no"])
    now = rn[rn.dsp.isna() | (rn.dsp > on)]
    home_now = now[now.kind.astype("object").isin(RESIDENTIAL)]
    F["housing_units"] = fam.total(home_now.row.to_numpy())
    F["housing_area_m2"] = np.round(fam.total(home_now.row.to_numpy(), home_now.area_m2.to_numpy()), 1)
    F["housing_area_pc"] = np.round(F["housing_area_m2"] / members_n, 2)
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

    # ---------------------------------------------------------------- vehicles and land
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

    # ---------------------------------------------------------------- livestock (linked animals)
    animals_path = store.table("resolution", "animal_records")
    heads = {s: np.zeros(fam.n, np.int64) for s in prm.livestock_units}
    if animals_path.exists():
        animals = pq.read_table(animals_path, columns=["registry", "record_id", "species", "animal_key"]).to_pandas()
        # each animal record's owner through the crosswalk (records without one are left out)
        owner = np.full(len(animals), -1, dtype=np.int64)
        registry = animals.registry.to_numpy(dtype=object)
        for r in pd.unique(registry):
            at = np.flatnonzero(registry == r)
            owner[at] = crosswalk.person_ids(r, "owner", pa.array(animals.record_id.to_numpy(dtype=object)[at],
                                                                  type=pa.large_string()))
        animals = animals.assign(person_id=owner)[owner >= 0]
        animals = animals.assign(row=fam.rows(animals.person_id.to_numpy()))
        animals = animals[animals.row >= 0]
        # an animal's species: the one most of its records give (ties: alphabetical)
        votes = animals.groupby(["animal_key", "species"], sort=False).size().rename("n").reset_index()
        votes = votes.sort_values(["animal_key", "n", "species"], ascending=[True, False, True], kind="mergesort")
        species = votes.drop_duplicates("animal_key").set_index("animal_key").species
        owned = animals[["row", "animal_key"]].drop_duplicates()
        owned_species = species.reindex(owned.animal_key).astype("object").to_numpy()
        for s in heads:
            heads[s] = fam.total(owned.row.to_numpy()[owned_species == s])
    F["livestock_heads"] = sum(heads.values())
    F["livestock_cattle"], F["livestock_sheep"], F["livestock_goats"] = heads["cattle"], heads["sheep"], heads["goat"]
    F["livestock_horses"], F["livestock_camels"] = heads["horse"], heads["camel"]
    F["livestock_units"] = np.round(sum(heads[s] * w for s, w in prm.livestock_units.items()), 2)
    sub = rows_of("livestock_subsidies", ["tag", "subsidy"], "owner").drop_duplicates(["row", "tag"])
    F["livestock_subsidy"] = np.round(fam.total(sub.row.to_numpy(), sub.subsidy.to_numpy()), 0)

    # ---------------------------------------------------------------- businesses
    llp = rows_of("gbd_ul_legal_entities", ["bin", "status"], "owner").drop_duplicates(["row", "bin"])
    F["legal_entities_active"] = fam.total(llp.row.to_numpy()[llp.status.astype("object").to_numpy() == "active"])
    F["sole_proprietors_active"] = fam.total(ip_active.row.to_numpy())
    F["businesses_active"] = F["legal_entities_active"] + F["sole_proprietors_active"]

    # ---------------------------------------------------------------- credit and debt
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

    # ---------------------------------------------------------------- health and justice
    crim = rows_of("criminal_records", ["expunged"])
    F["criminal_record_members"] = fam.persons(crim.person_id[~crim.expunged.astype("boolean").fillna(False).to_numpy(bool)])
    F["psychiatric_members"] = fam.persons(ids_in("psychiatric_register"))
    F["narcological_members"] = fam.persons(ids_in("narcological_register"))
    F["tuberculosis_members"] = fam.persons(ids_in("tuberculosis_register"))
    fsms = rows_of("fsms_health_insurance", ["insured"])
    insured = set(fsms.person_id[fsms.insured.astype("boolean").fillna(False).to_numpy(bool)].tolist())
    F["health_uninsured_members"] = fam.persons(fsms.person_id[~fsms.person_id.isin(insured)])
    attached = who.person_id.isin(ids_in("rpn_attached_population")).to_numpy()
    F["clinic_unattached_members"] = fam.total(row[~attached])
    F["pregnant_members"] = fam.persons(ids_in("pregnancy_register", group="mother"))
    vaccinated = who.person_id.isin(ids_in("child_vaccinations")).to_numpy()
    F["unvaccinated_children_under_7"] = fam.total(row[known & (age < 7) & ~vaccinated])
    F["administrative_offences"] = fam.total(rows_of("administrative_offences", []).row.to_numpy())
    F["border_crossings"] = fam.total(rows_of("border_crossings", []).row.to_numpy())
    F["military_conscripts"] = fam.persons(ids_in("military_register"))

    missing = [n for n in dictionary.names if n not in F]
    extra = [n for n in F if n not in dictionary.dtypes]
    if missing or extra:
        raise ValueError(f"family_features out of step with the dictionary: missing {missing}, undocumented {extra}")
    return F

"""Data-quality checks: each check family on records made by hand, the blocking behaviour of
ERROR checks, a clean country that fails no ERROR check, and defects caught where injected."""

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd

from family_pipeline.catalog import catalog
from family_pipeline.evaluation import evaluate
from family_pipeline.lib.identifiers import make_iins, valid_iin_mask
from family_pipeline.quality import registry_checks
from family_pipeline.quality.cross import (
    Reference,
    after_death,
    duplicates,
    livestock,
    population_register,
    region_votes,
    tag_disputes,
)
from family_pipeline.synth import generate_country
from family_pipeline_tests.conftest import copy_country, run_on_instance
from family_pipeline_tests.ingestion.test_formats import IINS, registry

SPEC = registry({"format": "csv"}, living_only=True)
AS_OF = dt.date(2026, 11, 1)


def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {"record_id": None, "iin": None, "iin_valid": None, "last_name": None, "birth_date": None, "sex": "M",
            "amount": 1.0, "children": 0, "status": "active", "disabled": False, "region": "KZ-75"}
    return pd.DataFrame([{**base, **r} for r in rows])


def _outcome(outcomes, name):
    return next(o for o in outcomes if o.check == name)


def test_single_registry_checks_flag_the_records_that_fail():
    bad_check = IINS[0][:-1] + str((int(IINS[0][-1]) + 1) % 10)
    clean = _frame([
        {"record_id": "R1", "iin": IINS[0], "iin_valid": True, "last_name": "Ким"},
        {"record_id": "R2", "iin": bad_check, "iin_valid": False, "last_name": "Ли"},
        {"record_id": "R3", "iin": None, "iin_valid": False, "last_name": "Пак"},  # named, no IIN
        {"record_id": "R4", "iin": None, "iin_valid": False, "last_name": None},  # nobody named
    ])
    quarantine = pd.DataFrame({"_row": [5], "record_id": ["R5"], "reason": ["out_of_range"], "column": ["children"],
                               "raw": ["{}"]})
    outcomes = registry_checks(SPEC, clean, quarantine, 5, previous_rows_read=5,
                               extracted_at="2026-10-31T20:00:00", as_of=AS_OF)
    assert [o.check for o in outcomes] == ["completeness", "identifiers", "value_sets", "ranges", "unique_keys",
                                          "quarantine", "row_count_drift", "freshness"]
    identifiers = _outcome(outcomes, "identifiers")
    assert not identifiers.passed and identifiers.severity == "WARN" and identifiers.sample() == ["R2"]
    completeness = _outcome(outcomes, "completeness")
    assert not completeness.passed and completeness.sample() == ["R3"]
    assert _outcome(outcomes, "quarantine").flagged == {"out_of_range": ["R5"]}
    for name in ("value_sets", "ranges", "unique_keys", "row_count_drift", "freshness"):
        assert _outcome(outcomes, name).passed, name
    # GX fingerprints no batch (an md5 over the whole frame, a third of the suites' time)
    from great_expectations.execution_engine import pandas_execution_engine
    assert pandas_execution_engine.HASH_THRESHOLD == 0


def test_drift_freshness_and_escalation_to_error():
    clean = _frame([{"record_id": f"R{i}", "iin": IINS[0], "iin_valid": True, "last_name": "Ким"} for i in range(30)])
    quarantine = pd.DataFrame({"_row": range(20), "record_id": [f"Q{i}" for i in range(20)],
                               "reason": ["malformed_row"] * 20, "column": [None] * 20, "raw": [""] * 20})
    outcomes = registry_checks(SPEC, clean, quarantine, 50, previous_rows_read=200,
                               extracted_at="2026-10-20T00:00:00", as_of=AS_OF)
    assert _outcome(outcomes, "quarantine").severity == "ERROR"  # 40% of the rows
    drift = _outcome(outcomes, "row_count_drift")
    assert not drift.passed and drift.severity == "ERROR" and drift.details["change"] == 0.75
    fresh = _outcome(outcomes, "freshness")  # a daily registry 12 days late: overdue, not yet unusable
    assert not fresh.passed and fresh.severity == "WARN" and fresh.details["age_days"] == 12
    stale = registry_checks(SPEC, clean, quarantine.iloc[0:0], 30, 30, "2026-08-01T00:00:00", AS_OF)
    assert _outcome(stale, "freshness").severity == "ERROR"


def test_cross_registry_checks():
    persons = pd.DataFrame({
        "person_id": [1, 2, 3], "iin": [IINS[0], IINS[1], None], "iin_disputed": [False, False, False],
        "last_name": ["Әбенова", "Иванов", "Ли"], "first_name": ["Дана", "Пётр", "Ан"], "patronymic": [None] * 3,
        "birth_date": [dt.date(1985, 2, 1), dt.date(2005, 12, 31), dt.date(1990, 1, 1)],
        "region": ["KZ-75", "KZ-11", "KZ-75"], "death_date": [None, dt.date(2026, 1, 1), None], "mentions": [5, 5, 1],
    })
    ref = Reference(persons, pd.Series([IINS[0], IINS[1]]))
    clean = _frame([
        {"record_id": "OK", "amount": 1, "iin": IINS[0], "iin_valid": True, "last_name": "Әбенова", "birth_date": dt.date(1985, 2, 1)},
        {"record_id": "FOLDED", "amount": 2, "iin": IINS[0], "iin_valid": True, "last_name": "Абенова", "birth_date": dt.date(1985, 2, 1)},
        {"record_id": "OTHER_IIN", "amount": 3, "iin": IINS[2], "iin_valid": True, "last_name": "Әбенова", "birth_date": dt.date(1985, 2, 1)},
        {"record_id": "MOVED", "amount": 4, "iin": IINS[0], "iin_valid": True, "last_name": "Әбенова", "region": "KZ-11"},
        {"record_id": "DEAD", "amount": 5, "iin": IINS[1], "iin_valid": True, "last_name": "Иванов", "region": "KZ-11"},
        {"record_id": "COPY", "amount": 5, "iin": IINS[1], "iin_valid": True, "last_name": "Иваноff", "region": "KZ-11"},
    ])
    xref = pd.DataFrame({"registry": "test_reg", "record_id": clean.record_id, "group": "subject",
                         "person_id": [1, 1, 1, 1, 2, 2]})
    spec = SPEC.model_copy(update={"columns": tuple(
        c.model_copy(update={"role": "subject.region"}) if c.name == "region" else c for c in SPEC.columns)})
    pop = population_register(spec, clean, xref, ref)
    assert pop.flagged["name_differs"] == ["COPY", "FOLDED"]
    assert pop.flagged["iin_differs"] == ["OTHER_IIN"] and pop.flagged["iin_unknown"] == ["OTHER_IIN"]
    assert pop.flagged["region_differs"] == ["MOVED"]
    dead = after_death(SPEC, clean, xref, ref, "2026-11-01T00:00:00")
    assert dead.flagged == {"dead_subject": ["DEAD", "COPY"]}
    dup = duplicates(SPEC, clean, xref)
    assert sorted(dup.flagged["duplicate_record"]) == ["COPY", "DEAD"]  # the same person, the same facts


def _people_spec(code: str = "people_reg", encoding: str = "utf-8", region_role: bool = True):
    """A registry naming one person in full: IIN, surname, first name, patronymic, birth date."""
    return registry({"format": "csv", "encoding": encoding}, code=code, columns=[
        {"name": "record_id", "source": "ID", "type": "string", "required": True, "unique": True},
        {"name": "iin", "source": "IIN", "type": "iin", "role": "subject.iin"},
        {"name": "last_name", "source": "FAM", "type": "name", "role": "subject.last_name"},
        {"name": "first_name", "source": "IM", "type": "name", "role": "subject.first_name"},
        {"name": "patronymic", "source": "OT", "type": "name", "role": "subject.patronymic"},
        {"name": "birth_date", "source": "DR", "type": "date", "role": "subject.birth_date"},
        {"name": "region", "source": "OBL", "type": "region", **({"role": "subject.region"} if region_role else {})},
    ])


def _persons(rows: list[dict]) -> pd.DataFrame:
    base = {"iin": None, "iin_disputed": False, "last_name": None, "first_name": None, "patronymic": None,
            "birth_date": None, "region": "KZ-75", "death_date": None, "mentions": 5}
    return pd.DataFrame([{**base, **r} for r in rows])


def _people(rows: list[dict]) -> pd.DataFrame:
    base = {"iin": None, "iin_valid": True, "last_name": None, "first_name": None, "patronymic": None,
            "birth_date": None, "region": "KZ-75"}
    return pd.DataFrame([{**base, **r} for r in rows])


def _subjects(clean: pd.DataFrame, person_ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"record_id": clean.record_id, "group": "subject", "person_id": person_ids})


def test_patronymics_may_change_their_gendered_form_but_not_their_spelling():
    persons = _persons([{"person_id": 1, "iin": IINS[0], "last_name": "Әбенова", "first_name": "Дана",
                         "patronymic": "Ержанқызы", "birth_date": dt.date(1985, 2, 1)}])
    ref = Reference(persons, pd.Series([IINS[0]]))
    person = {"iin": IINS[0], "last_name": "Әбенова", "first_name": "Дана", "birth_date": dt.date(1985, 2, 1)}
    clean = _people([
        {"record_id": "SAME", **person, "patronymic": "Ержанқызы"},
        {"record_id": "RUSSIAN_FORM", **person, "patronymic": "Ержановна"},  # the same father, another form
        {"record_id": "TYPO_IN_ENDING", **person, "patronymic": "Ержанэвна"},
        {"record_id": "SOFT_SIGN", **person, "patronymic": "Ержьанқызы"},  # lost in a name key, not here
        {"record_id": "FOLDED_ENDING", **person, "patronymic": "Ержанкызы"},  # қ written as к
        {"record_id": "LATIN", **person, "patronymic": "Erzhankyzy"},
    ])
    spec = _people_spec()
    out = population_register(spec, clean, _subjects(clean, [1] * 6), ref)
    assert out.flagged["name_differs"] == ["FOLDED_ENDING", "LATIN", "SOFT_SIGN", "TYPO_IN_ENDING"]
    # an export that cannot write Kazakh letters is compared folded: only the typo stays
    folding = _people_spec(encoding="cp1251")
    folded = clean[clean.record_id.isin(["FOLDED_ENDING", "TYPO_IN_ENDING"])].reset_index(drop=True)
    out = population_register(folding, folded, _subjects(folded, [1, 1]), ref)
    assert out.flagged["name_differs"] == ["TYPO_IN_ENDING"]


def test_an_iin_the_register_gives_another_person_of_that_name_and_birth_date():
    born = dt.date(1977, 7, 7)
    right, mistyped = IINS[3], IINS[3][:10] + str((int(IINS[3][10]) + 3) % 10) + IINS[3][11]
    other_day = str(make_iins(np.array(["1977-07-08"], dtype="datetime64[D]"), np.array(["F"]), np.array([404]))[0])
    register = pd.DataFrame({"iin": [right], "iin_valid": [True], "last_name": ["Сейітова"], "first_name": ["Айгүл"],
                             "birth_date": [born]})
    persons = _persons([
        {"person_id": 1, "iin": right, "last_name": "Сейітова", "first_name": "Айгүл", "birth_date": born, "mentions": 12},
        {"person_id": 2, "iin": mistyped, "last_name": "Сейітова", "first_name": "Айгүл", "birth_date": born, "mentions": 2},
    ])
    ref = Reference(persons, register.iin, register)
    person = {"last_name": "Сейітова", "first_name": "Айгүл", "birth_date": born}
    clean = _people([
        {"record_id": "RIGHT", "iin": right, **person},
        {"record_id": "MISTYPED", "iin": mistyped, **person},  # a valid IIN, one digit off: no check digit sees it
        {"record_id": "NAMESAKE", "iin": other_day, "last_name": "Сейітова", "first_name": "Айгүл",
         "birth_date": dt.date(1977, 7, 8)},  # born another day: another person
    ])
    assert valid_iin_mask(np.array([mistyped, other_day])).all()
    out = population_register(_people_spec(), clean, _subjects(clean, [1, 2, 3]), ref)
    assert out.flagged["iin_registered_otherwise"] == ["MISTYPED"]
    # the register's own record with the mistyped IIN, while the other registries use the right one
    register = register.assign(iin=[mistyped])
    persons = persons.assign(mentions=[12, 1], iin=[right, mistyped])
    ref = Reference(persons, register.iin, register)
    gbd = _people([{"record_id": "FL1", "iin": mistyped, **person}])
    out = population_register(_people_spec(code="gbd_fl"), gbd, _subjects(gbd, [2]), ref)
    assert out.flagged["iin_registered_otherwise"] == ["FL1"]
    # ... but a register record whose IIN the others use is not asked about
    out = population_register(_people_spec(code="gbd_fl"), gbd.assign(iin=[right]), _subjects(gbd, [1]), ref)
    assert "iin_registered_otherwise" not in out.flagged
    # a register IIN mistyped into another real person's IIN names that person: it proves nothing
    # against the records that carry the right one
    persons = persons.assign(mentions=[3, 20], last_name=["Сейітова", "Омарова"])
    ref = Reference(persons, register.iin, register)
    right_record = clean[clean.record_id == "RIGHT"].reset_index(drop=True)
    out = population_register(_people_spec(), right_record, _subjects(right_record, [1]), ref)
    assert "iin_registered_otherwise" not in out.flagged


def test_a_record_left_alone_by_resolution_is_compared_with_the_registers_record_of_its_iin():
    born = dt.date(1960, 3, 3)
    register = pd.DataFrame({"iin": [IINS[2]], "iin_valid": [True], "last_name": ["Жұмабаев"],
                             "first_name": ["Серік"], "patronymic": ["Асқарұлы"], "birth_date": [born]})
    persons = _persons([
        {"person_id": 1, "iin": IINS[2], "last_name": "Жұмабаев", "first_name": "Серік", "patronymic": "Асқарұлы",
         "birth_date": born, "mentions": 9},
        # a mistyped surname matched nobody: its own person, whose golden record is the typo
        {"person_id": 2, "iin": None, "iin_disputed": True, "last_name": "Жұмабаеу", "first_name": "Серік",
         "patronymic": "Асқарұлы", "birth_date": born, "mentions": 1},
    ])
    ref = Reference(persons, register.iin, register)
    clean = _people([{"record_id": "ALONE", "iin": IINS[2], "last_name": "Жұмабаеу", "first_name": "Серік",
                      "patronymic": "Асқарұлы", "birth_date": born}])
    out = population_register(_people_spec(), clean, _subjects(clean, [2]), ref)
    assert out.flagged["name_differs"] == ["ALONE"]


def test_the_reference_holds_no_python_object_per_person():
    """The reference is shared by the processes checking registries: its per-person columns are
    numbers, dates and categories, its name-and-birth keys int64, and it judges as text would:
    a name written in Latin letters keys as its Cyrillic form, a name no one has makes no key,
    and a record left alone takes the register's names even where no person has them."""
    from family_pipeline.quality.cross import NameBirthKeys

    born = dt.date(1960, 3, 3)
    register = pd.DataFrame({"iin": [IINS[2], IINS[3]], "iin_valid": [True, True], "last_name": ["Жұмабаев", "Ли"],
                             "first_name": ["Серік", "Ан"], "patronymic": ["Асқарұлы", None], "birth_date": [born, born]})
    persons = _persons([
        {"person_id": 1, "iin": IINS[2], "last_name": "Жұмабаев", "first_name": "Сериик", "patronymic": "Асқарұлы",
         "birth_date": born, "mentions": 1},
        {"person_id": 2, "iin": IINS[3], "last_name": "Ли", "first_name": "Ан", "birth_date": born, "mentions": 4},
    ])
    ref = Reference(persons, register.iin, register)
    for frame in (ref.golden, ref.register_by_iin, ref.region.to_frame()):
        assert not any(dtype == object or pd.api.types.is_string_dtype(dtype) for dtype in frame.dtypes), frame.dtypes
    assert ref.golden.iin.to_dict() == {1: int(IINS[2]), 2: int(IINS[3])}
    for index in (ref.register_by_name.index, ref.outside_by_name.index):
        assert index.dtype == np.int64
    keys = ref.name_keys(["Zhumabaev", "Жұмабаев", "Жұмабаев", "Ким", None], ["Serik", "Серік", "Серік", "Серік", "Ан"],
                         np.array([600303, 600303, 600304, 600303, 600303]))
    assert keys[0] == keys[1] >= 0 and keys[2] == keys[1] + 1 and keys[3] == keys[4] == -1
    # the register's record of IIN 2 is the reference of person 1, a record of one mention:
    # its first name "Серік" no person carries, and the record writes it so
    clean = _people([{"record_id": "ALONE", "iin": IINS[2], "last_name": "Жұмабаев", "first_name": "Серік",
                      "patronymic": "Асқарұлы", "birth_date": born}])
    assert "name_differs" not in population_register(_people_spec(), clean, _subjects(clean, [1]), ref).flagged
    empty = NameBirthKeys([])
    assert empty(["Ли"], ["Ан"], np.array([600303])).tolist() == [-1]


def test_a_category_column_is_replaced_and_compared_through_its_codes_as_its_text_would_be():
    from family_pipeline.quality.cross import _differs, _replaced

    golden = pd.Series(["Ан", "Ли", None, "Ан"], dtype="category", index=[10, 11, 12, 13])
    # rows 10 and 12 take the register's: a name new to the column, and a missing one
    out = _replaced(golden, np.array([True, False, True, False]), pd.Series(["Серік", None]))
    assert isinstance(out.dtype, pd.CategoricalDtype) and out.index.tolist() == [10, 11, 12, 13]
    assert out.astype(object).where(out.notna(), None).tolist() == ["Серік", "Ли", None, "Ан"]
    written = pd.Series(["Серік", "Ким", "Ли", None], index=out.index)
    as_text = out.astype(object)
    expected = (written.notna() & as_text.notna() & (written != as_text)).tolist()
    assert _differs(written, out).tolist() == expected == [False, True, False, False]


def test_a_name_differs_when_its_trimmed_text_does_whatever_the_columns_dtypes():
    from family_pipeline.quality.cross import _spelling_differs

    written = pd.Series(["Ли ", "Ким", None, "Пак", "Ли"])
    theirs = ["Ли", "Ли", "Ли", None, " Ли"]
    for reference in (pd.Series(theirs), pd.Series(theirs, dtype="category"), pd.Series(theirs, dtype=object)):
        assert _spelling_differs(written, reference, fold=False, patronymic=False).tolist() == \
            [False, True, False, False, False]


def test_a_region_is_judged_against_the_region_a_persons_records_agree_on():
    golden = pd.Series(["KZ-11", "KZ-11", "KZ-75"], index=[1, 2, 3])
    pairs = pd.DataFrame({"person_id": [1, 1, 1, 2, 2, 3], "region": ["KZ-11", "KZ-75", "KZ-75", "KZ-11", "KZ-75", "KZ-75"]})
    voted = region_votes(pairs, golden)
    # two records against the golden record's one; a tie keeps the golden region
    assert voted.to_dict() == {1: "KZ-75", 2: "KZ-11", 3: "KZ-75"}


def test_regions_counted_registry_by_registry_vote_as_all_pairs_at_once():
    """The votes count each registry's pairs as it is read (RegionTally): a region first given
    by a later registry, a tie broken by neither side, a person only one registry places."""
    from family_pipeline.quality.cross import RegionTally

    golden = pd.Series(["KZ-11", "KZ-11", "KZ-75", None], index=[10, 20, 30, 40])
    first = pd.DataFrame({"person_id": [10, 20, 30], "region": ["KZ-75", "KZ-11", "KZ-75"]})
    second = pd.DataFrame({"person_id": [10, 20, 20, 30, 40, 40], "region": ["KZ-75", "KZ-19", "KZ-19", "KZ-19", "KZ-19", "KZ-75"]})
    tally = RegionTally(golden)
    tally.add(first)
    tally.add(second)
    voted = tally.votes()
    assert voted.to_dict() == region_votes(pd.concat([first, second]), golden).to_dict()
    # 10: two records against none; 20: two of a region first seen in the second registry
    # against one; 30: a tie the golden region is in; 40: a tie without it, so none
    assert voted.iloc[:3].to_dict() == {10: "KZ-75", 20: "KZ-19", 30: "KZ-75"} and pd.isna(voted[40])


def test_a_region_column_without_a_role_is_checked_against_the_person_it_follows():
    n = 250  # enough rows to tell what the column records
    persons = _persons([{"person_id": i, "iin": None, "region": "KZ-75" if i % 2 else "KZ-11"} for i in range(n)])
    ref = Reference(persons, pd.Series([], dtype=object))
    clean = _people([{"record_id": f"R{i}", "region": "KZ-75" if i % 2 else "KZ-11"} for i in range(n)])
    clean.loc[7, "region"] = "KZ-11"  # one wrong region among agreeing ones
    spec = _people_spec(region_role=False)
    out = population_register(spec, clean, _subjects(clean, list(range(n))), ref)
    assert out.flagged["region_differs"] == ["R7"] and out.details["region_follows"] == "subject"
    # a column that agrees with its persons only now and then records something else
    clean["region"] = ["KZ-75" if i % 3 else "KZ-11" for i in range(n)]
    out = population_register(spec, clean, _subjects(clean, list(range(n))), ref)
    assert "region_differs" not in out.flagged


def test_tags_the_records_of_an_animal_dispute():
    linked = pd.DataFrame([
        # three records of one cow, one with a digit wrong: the majority's tag is the cow's
        ("isj", "A1", "KZ000100000019", "KZ000100000019"), ("vet", "A2", "KZ000100000019", "KZ000100000019"),
        ("hh", "A3", "KZ000100000049", "KZ000100000019"),
        # two records, both well formed, one digit apart: nobody can tell which one is right
        ("isj", "B1", "KZ000100000026", "KZ000100000026"), ("hh", "B2", "KZ000100000028", "KZ000100000026"),
        # two records, one with a digit dropped: the standard form wins the tie
        ("isj", "C1", "KZ000100000033", "KZ000100000033"), ("hh", "C2", "KZ00010000033", "KZ000100000033"),
        # alone, and one linked without a tag of its own
        ("isj", "D1", "KZ000100000040", "KZ000100000040"), ("hh", "E1", None, "#hh/E1"),
    ], columns=["registry", "record_id", "tag_norm", "animal_key"])
    linked["tag"] = linked.tag_norm
    disputed = linked.loc[tag_disputes(linked), "record_id"].tolist()
    assert disputed == ["A3", "B1", "B2", "C2"]
    spec = catalog().registry("household_livestock")
    out = livestock(spec, linked.assign(registry=linked.registry.replace({"hh": spec.code})),
                    pd.DataFrame({"animal_key": [], "kind": []}))
    assert out.flagged["tag_differs"] == ["A3", "B2", "C2"] and out.flagged["tag_format"] == ["C2"]


# ------------------------------------------------------------------ on generated countries
def _run(root, home, job="family_map", selection=None):
    return run_on_instance(root, home, job, selection)[0]


def test_a_clean_country_fails_no_error_check(tmp_path):
    root = tmp_path / "clean"
    generate_country(root, persons=1_500, seed=5, defect_scale=0, progress=False)
    result = _run(root, tmp_path / "home")
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) > 900
    errors = [(e.asset_key.path[-1], e.check_name) for e in evaluations
              if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    assert errors == []


def test_failed_checks_appear_where_defects_were_injected(small_country, tmp_path):
    root = copy_country(small_country, tmp_path / "country")
    result = _run(root, tmp_path / "home")
    assert result.success
    quality = evaluate(root)["quality"]
    kinds = quality["defect_kinds"]
    caught = {k for k, v in kinds.items() if v.get("records_caught") or v.get("registries_caught")}
    assert caught == set(kinds), set(kinds) - caught  # every kind the generator injects is caught
    for kind in ("out_of_range", "dead_person_appears", "name_swap", "name_translit", "iin_wrong_valid",
                 "virtual_animal", "phantom_animal", "stale_extract"):
        assert kinds[kind]["recall"] >= 0.95, (kind, kinds[kind])
    flagged_clean = sum(quality["flagged_without_injected_defect"].values())
    # copies are flagged with their originals (a duplicate, a virtual cow's first registration);
    # beyond those, flags land on injected defects
    partners = sum(quality["flagged_without_injected_defect"].get(k, 0)
                   for k in ("duplicates:duplicate_record", "livestock:virtual_animal"))
    assert flagged_clean - partners <= 0.02 * quality["flagged_records"]


def test_an_error_check_on_a_scoring_registry_blocks_downstream(small_country, tmp_path):
    root = copy_country(small_country, tmp_path / "country")
    spec = catalog().registry("gbd_fl")
    assert spec.feeds_scoring
    path = root / "landing" / spec.code / spec.file_name
    data = path.read_bytes()
    rows = data.count(b"\n")
    path.write_bytes(data + b"broken\n" * rows)  # half the file unreadable: the registry is unusable
    keys = [dg.AssetKey(["registries", spec.code]), dg.AssetKey(["registries", "zags_marriages"]),
            dg.AssetKey(["resolution", "person_mentions"])]
    result = _run(root, tmp_path / "home", selection=keys)
    assert not result.success
    evaluation = next(e for e in result.get_asset_check_evaluations()
                      if e.asset_key == keys[0] and e.check_name == "quarantine")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert keys[1] in materialized  # other registries are unaffected
    assert keys[2] not in materialized  # resolution waits for a usable population register


def test_a_registry_validated_in_chunks_finds_what_one_batch_finds(monkeypatch):
    from family_pipeline.quality import expectations

    bad_check = IINS[0][:-1] + str((int(IINS[0][-1]) + 1) % 10)
    clean = _frame([
        {"record_id": "R1", "iin": IINS[0], "iin_valid": True, "last_name": "Ким"},
        {"record_id": "R2", "iin": bad_check, "iin_valid": False, "last_name": "Ли", "sex": "X"},
        {"record_id": "R3", "iin": None, "iin_valid": False, "last_name": "Пак", "children": -1},
        {"record_id": "R1", "iin": IINS[1], "iin_valid": True, "last_name": None},  # the id again, in another chunk
        {"record_id": "R5", "iin": bad_check, "iin_valid": False, "last_name": "Ли", "status": "unknown"},
    ])
    whole = registry_checks(SPEC, clean, clean.iloc[0:0].assign(reason=None), 5, 5, "2026-10-31T20:00:00", AS_OF)
    monkeypatch.setattr(expectations, "GX_CHUNK_ROWS", 2)
    chunked = registry_checks(SPEC, clean, clean.iloc[0:0].assign(reason=None), 5, 5, "2026-10-31T20:00:00", AS_OF)
    assert [vars(o) for o in chunked] == [vars(o) for o in whole]
    assert _outcome(whole, "unique_keys").flagged and _outcome(whole, "identifiers").flagged


def _terminated_by_sigterm(_task=None) -> bool:
    import signal

    return signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_the_cross_check_pool_ends_under_a_step_process_signal_handler():
    """A step process handles SIGTERM (Dagster maps it to its interrupt handler); the cross-check
    pool's workers must not inherit that: ``Pool.terminate`` holds the pool's queue lock and
    counts on SIGTERM to end every worker, so one that survives it waits on the lock for ever."""
    import signal
    import threading

    from family_pipeline.quality.runner import worker_pool

    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # what a step process's handler does to us
    try:
        for finish in ("terminate", "close"):
            pool = worker_pool(2)
            assert pool.map(abs, [-1, -2, 3]) == [1, 2, 3]
            assert all(pool.map(_terminated_by_sigterm, range(4), chunksize=1))
            getattr(pool, finish)()
            joined = threading.Thread(target=pool.join, daemon=True)
            joined.start()
            joined.join(timeout=20)
            assert not joined.is_alive(), f"the pool's workers outlived {finish}()"
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_registry_checked_a_part_at_a_time_gets_the_outcomes_of_checking_it_at_once(family_map_run, monkeypatch):
    """A national registry is checked against the population register a part of its rows at a
    time (runner.CHECK_ROWS): the flags, their order, the counts, the severity and which person
    a region column follows must be what checking all rows at once gives."""
    from family_pipeline.quality import runner

    lake = family_map_run["lake"]
    specs = [s for s in catalog().registries if s.person_groups]
    whole = {s.code: runner.run_cross_checks(lake, s) for s in specs}
    monkeypatch.setattr(runner, "CHECK_ROWS", 97)
    parts = {s.code: runner.run_cross_checks(lake, s) for s in specs}
    assert {c: [vars(o) for o in v] for c, v in parts.items()} == {c: [vars(o) for o in v] for c, v in whole.items()}
    register = {c: _outcome(v, "population_register") for c, v in whole.items()}
    death = {c: _outcome(v, "after_death") for c, v in whole.items()}
    rows = {s.code: lake.read("registries", s.code, columns=[s.record_id]).num_rows for s in specs}
    # the comparison means something: registries of several parts whose checks flag records,
    # after death too, and a region column judged by the person it follows
    assert sum(rows[c] > 97 and len(o.flagged) > 1 for c, o in register.items()) >= 10
    assert sum(rows[c] > 97 and bool(o.flagged) for c, o in death.items()) >= 2
    assert any(k.endswith("_follows") for o in register.values() for k in o.details)


def test_the_reference_read_with_no_python_object_per_row_gives_the_outcomes_of_one_read_as_objects(
        family_map_run, monkeypatch):
    """The reference and each registry's whole-registry columns are read with no Python object
    per row (names and regions as categories, dates as datetime64), the reference's indexes by IIN, name key and person are sorted (pandas looks a
    national one up by binary search, with no hash table), and the name codes it was built
    from are let go: every registry's outcomes are what a reference and registry columns read
    as before give (names as text, dates as Python objects)."""
    from family_pipeline.quality import cross, runner

    lake = family_map_run["lake"]
    specs = [s for s in catalog().registries if s.person_groups]
    runner.release_reference()
    try:
        ref = runner.reference(lake)
        for frame in (ref.golden, ref.register_by_iin, ref.region.to_frame()):
            assert not any(dtype == object for dtype in frame.dtypes), frame.dtypes
        for lookup in (ref.golden, ref.register_by_name, ref.outside_by_name, ref.iin_mentions, ref.register_by_iin,
                       ref.death):
            assert len(lookup) and lookup.index.is_monotonic_increasing and lookup.index.is_unique
        assert ref.name_keys.codes == []
        dated = next((s, c.name) for s in specs for c in s.columns if c.type == "date" and c.name in cross.fact_columns(s))
        assert runner._read(lake.table("registries", dated[0].code), [dated[1]])[dated[1]].dtype.kind == "M"
        compact = {s.code: [vars(o) for o in runner.run_cross_checks(lake, s)] for s in specs}

        def as_objects(table):
            return table.to_pandas()

        monkeypatch.setattr(runner, "_compact_frame", as_objects)
        monkeypatch.setattr(runner, "_read_compact", lambda path, columns: pd.read_parquet(path, columns=columns))
        runner.release_reference()
        assert {s.code: [vars(o) for o in runner.run_cross_checks(lake, s)] for s in specs} == compact
    finally:
        runner.release_reference()
    # the comparison means something: registries whose population checks flag records
    assert sum(bool(o["flagged"]) for outcomes in compact.values() for o in outcomes) >= 10


def test_copies_in_different_parts_of_a_registry_are_found_whatever_else_each_part_holds():
    """The duplicates check hashes each part of a registry and compares only the rows whose hash
    another row shares. A part with a missing number has its integers as floats, and one with a
    missing flag its flags as Python objects: a copy must hash as its original all the same, and
    the outcome must be the one of comparing every row at once, its share counted over them all."""
    from family_pipeline.quality.cross import duplicate_candidates, row_hashes

    spec = registry({"format": "csv"}, code="benefits_reg", columns=[
        {"name": "record_id", "source": "ID", "type": "string", "required": True, "unique": True},
        {"name": "iin", "source": "IIN", "type": "iin", "role": "subject.iin"},
        {"name": "children", "source": "DETI", "type": "int"},
        {"name": "disabled", "source": "INV", "type": "bool"},
        {"name": "granted", "source": "DT", "type": "date"},
    ])
    day = dt.date(2024, 5, 1)
    first = pd.DataFrame({"record_id": ["A", "B", "C"], "iin": [IINS[0], IINS[1], IINS[2]],
                          "children": [2, 3, 1], "disabled": [True, False, True], "granted": [day, day, None]})
    second = pd.DataFrame({"record_id": ["A2", "B2", "D", "E"], "iin": [IINS[3], IINS[1], IINS[2], IINS[0]],
                           "children": [2.0, 3.0, np.nan, 4.0], "disabled": [True, False, None, True],
                           "granted": [day, day, None, None]}, index=[3, 4, 5, 6])
    persons = {"A": 7, "B": 8, "C": 9, "A2": 7, "B2": 8, "D": 9, "E": 9}
    hashes = [row_hashes(spec, part, pd.DataFrame({"subject": part.record_id.map(persons)}, index=part.index))
              for part in (first, second)]
    assert first.children.dtype == np.int64 and second.children.dtype == np.float64 and second.disabled.dtype == object
    candidates = duplicate_candidates(np.concatenate(hashes))
    whole = pd.concat([first, second])
    subjects = pd.DataFrame({"subject": whole.record_id.map(persons)}, index=whole.index)
    at_once = duplicates(spec, whole, subjects)
    by_hash = duplicates(spec, whole.iloc[candidates], subjects.iloc[candidates], rows=len(whole))
    # A and A2, B and B2 are copies (the same person, children, flag and date); C, D and E differ
    assert at_once.flagged == {"duplicate_record": ["A", "B", "A2", "B2"]}
    assert vars(by_hash) == vars(at_once)
    assert set(candidates) >= {0, 1, 3, 4} and len(candidates) < len(whole)
    # the share is counted over the whole registry: 4 copies of 7 rows is an error in any part
    assert by_hash.severity == "ERROR"

"""The family rules on small hand-written registries: each case is a few persons and records."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from family_pipeline.families import FormationInputs, FormationRules, form_families

AS_OF = dt.date(2026, 11, 1)
HOME = "ул. Абая, д. 1, кв. 1"


def born(age: int, month: int = 6) -> pd.Timestamp:
    return pd.Timestamp(AS_OF.year - age, month, 1)


class Country:
    """A tiny country written record by record, turned into formation inputs."""

    def __init__(self):
        self.persons: list[dict] = []
        self.marriages: list[dict] = []
        self.divorces: list[dict] = []
        self.births: list[dict] = []
        self.guardianship: list[dict] = []
        self.students: list[dict] = []
        self.disabled: list[dict] = []
        self.addresses: list[dict] = []
        self.rural: list[int] = []

    def person(self, pid: int, sex: str, age: int, *, address: str | None = HOME, last_name: str = "Иванов",
               alive: bool = True, resident: bool = True, since: str = "2015-01-01") -> int:
        if sex == "F" and last_name.endswith(("ов", "ев", "ин")):
            last_name += "а"
        self.persons.append({"person_id": pid, "sex": sex, "birth_date": born(age), "alive": alive, "resident": resident,
                             "last_name": last_name, "region": "KZ-75", "address": address})
        if address is not None:
            self.register(pid, address, since)
        return pid

    def register(self, pid: int, address: str, since: str) -> None:
        self.addresses.append({"record_id": f"ADR{len(self.addresses):05d}", "person_id": pid, "address": address,
                               "region": "KZ-75", "registered_since": pd.Timestamp(since)})

    def marry(self, husband: int, wife: int, on: str, divorced: str | None = None) -> None:
        self.marriages.append({"record_id": f"MAR{len(self.marriages):05d}", "husband_id": husband, "wife_id": wife,
                               "marriage_date": pd.Timestamp(on), "divorce_date": pd.Timestamp(divorced) if divorced else pd.NaT})

    def divorce(self, husband: int, wife: int, on: str) -> None:
        self.divorces.append({"record_id": f"DIV{len(self.divorces):05d}", "husband_id": husband, "wife_id": wife,
                              "divorce_date": pd.Timestamp(on)})

    def birth(self, child: int, mother: int = -1, father: int = -1) -> None:
        self.births.append({"record_id": f"BIR{len(self.births):05d}", "child_id": child, "mother_id": mother,
                            "father_id": father})

    def ward(self, child: int, guardian: int, on: str = "2020-01-01") -> None:
        self.guardianship.append({"record_id": f"GRD{len(self.guardianship):05d}", "child_id": child,
                                  "guardian_id": guardian, "established_date": pd.Timestamp(on)})

    def study(self, pid: int, full_time: bool = True) -> None:
        self.students.append({"person_id": pid, "full_time": full_time})

    def inputs(self) -> FormationInputs:
        def frame(rows, columns):
            return pd.DataFrame(rows, columns=columns)

        return FormationInputs(
            persons=frame(self.persons, ["person_id", "sex", "birth_date", "alive", "resident", "last_name", "region", "address"]),
            marriages=frame(self.marriages, ["record_id", "husband_id", "wife_id", "marriage_date", "divorce_date"]),
            divorces=frame(self.divorces, ["record_id", "husband_id", "wife_id", "divorce_date"]),
            births=frame(self.births, ["record_id", "child_id", "mother_id", "father_id"]),
            guardianship=frame(self.guardianship, ["record_id", "child_id", "guardian_id", "established_date"]),
            students=frame(self.students, ["person_id", "full_time"]),
            disabled=frame(self.disabled, ["person_id", "disability_group"]),
            addresses=frame(self.addresses, ["record_id", "person_id", "address", "region", "registered_since"]),
            rural=frame([{"person_id": p} for p in self.rural], ["person_id"]),
            as_of=AS_OF,
        )

    def form(self):
        tables = form_families(self.inputs(), FormationRules())
        members = tables.members.set_index("person_id")
        return tables, members


def together(members: pd.DataFrame, *pids: int) -> bool:
    return members.loc[list(pids), "family_id"].nunique() == 1


def apart(members: pd.DataFrame, *pids: int) -> bool:
    return members.loc[list(pids), "family_id"].nunique() == len(pids)


def test_married_parents_and_their_minor_children_are_one_family():
    c = Country()
    dad, mum = c.person(1, "M", 40), c.person(2, "F", 37)
    c.marry(dad, mum, "2010-05-01")
    for kid, age in ((3, 12), (4, 3)):
        c.person(kid, "M", age)
        c.birth(kid, mum, dad)
    tables, m = c.form()
    assert together(m, 1, 2, 3, 4) and len(tables.families) == 1
    fam = tables.families.iloc[0]
    assert fam.family_type == "couple_kids" and fam.members == 4 and fam.head_person_id == dad
    assert m.loc[1, "role"] == "head" and m.loc[2, "role"] == "spouse" and m.loc[3, "role"] == "child"
    assert m.loc[1, "rule"] == "marriage" and m.loc[4, "rule"] == "child_under_18"


def test_remarriage_the_latest_marriage_wins_and_children_follow_their_mother():
    c = Country()
    man, first_wife, second_wife = c.person(1, "M", 45), c.person(2, "F", 44, address="ул. Сейфуллина, д. 9, кв. 4"), c.person(3, "F", 35)
    c.marry(man, first_wife, "2002-01-01")
    c.divorce(man, first_wife, "2012-03-01")
    c.marry(man, second_wife, "2015-06-01")
    c.person(4, "F", 16, address="ул. Сейфуллина, д. 9, кв. 4")
    c.birth(4, first_wife, man)
    c.person(5, "M", 5)
    c.birth(5, second_wife, man)
    tables, m = c.form()
    assert together(m, 1, 3, 5) and together(m, 2, 4) and apart(m, 1, 2)
    assert m.loc[2, "rule"] == "single_parent" and m.loc[4, "rule"] == "child_under_18"


def test_two_undivorced_marriages_keep_only_the_later_one():
    c = Country()
    man, old, new = c.person(1, "M", 50), c.person(2, "F", 49, address="ул. Ленина, д. 2"), c.person(3, "F", 40)
    c.marry(man, old, "1998-01-01")   # the divorce never reached the registry
    c.marry(man, new, "2016-01-01")
    tables, m = c.form()
    assert together(m, 1, 3) and apart(m, 1, 2)
    assert m.loc[2, "role"] == "single"


def test_divorce_splits_the_couple_and_the_child_goes_to_the_parent_at_its_address():
    c = Country()
    dad, mum = c.person(1, "M", 38, address="ул. Гагарина, д. 5, кв. 7"), c.person(2, "F", 36)
    c.marry(dad, mum, "2012-01-01", divorced="2021-02-01")
    c.person(3, "F", 10)                                    # lives with the mother
    c.birth(3, mum, dad)
    c.person(4, "M", 13, address="ул. Гагарина, д. 5, кв. 7")  # lives with the father
    c.birth(4, mum, dad)
    tables, m = c.form()
    assert apart(m, 1, 2) and together(m, 2, 3) and together(m, 1, 4)
    assert set(tables.families.family_type) == {"single_parent"}


def test_a_divorce_recorded_only_in_the_divorce_register_ends_the_marriage():
    c = Country()
    c.person(1, "M", 38, address="ул. Гагарина, д. 5, кв. 7")
    c.person(2, "F", 36)
    c.marry(1, 2, "2012-01-01")
    c.divorce(1, 2, "2020-01-01")
    _, m = c.form()
    assert apart(m, 1, 2)


def test_death_of_a_parent_leaves_a_single_parent_family():
    c = Country()
    dad, mum = c.person(1, "M", 50, alive=False), c.person(2, "F", 45)
    c.marry(dad, mum, "2000-01-01")
    c.person(3, "M", 15)
    c.birth(3, mum, dad)
    tables, m = c.form()
    assert 1 not in m.index                       # the dead are in no family
    assert together(m, 2, 3) and tables.families.iloc[0].family_type == "single_parent"
    assert m.loc[2, "role"] == "head" and m.loc[2, "rule"] == "single_parent"


def test_adult_children_stay_while_studying_full_time_up_to_23():
    c = Country()
    dad, mum = c.person(1, "M", 52), c.person(2, "F", 50)
    c.marry(dad, mum, "1999-01-01")
    for kid, age in ((3, 20), (4, 19), (5, 24), (6, 21)):
        c.person(kid, "F", age)
        c.birth(kid, mum, dad)
    c.study(3)                     # full-time student of 20: stays
    c.study(5)                     # a student of 24: too old to be a dependant
    c.study(6, full_time=False)    # part-time: works, has a family of their own
    _, m = c.form()
    assert together(m, 1, 2, 3) and m.loc[3, "rule"] == "child_student_18_23"
    assert apart(m, 1, 4, 5, 6)
    assert (m.loc[[4, 5, 6], "role"] == "single").all()


def test_a_disabled_adult_child_at_the_parents_address_stays():
    c = Country()
    mum = c.person(1, "F", 60)
    c.person(2, "M", 35)
    c.birth(2, mum)
    c.disabled.append({"person_id": 2, "disability_group": 1})
    _, m = c.form()
    assert together(m, 1, 2) and m.loc[2, "rule"] == "child_disabled_dependent"


def test_guardianship_puts_the_ward_in_the_guardians_family():
    c = Country()
    aunt, uncle = c.person(1, "F", 40, address="ул. Жамбыла, д. 3"), c.person(2, "M", 42, address="ул. Жамбыла, д. 3")
    c.marry(uncle, aunt, "2005-01-01")
    mother = c.person(3, "F", 30, address="ул. Достык, д. 8, кв. 2")
    c.person(4, "M", 8, address="ул. Жамбыла, д. 3")
    c.birth(4, mother)
    c.ward(4, aunt)
    tables, m = c.form()
    assert together(m, 1, 2, 4) and apart(m, 3, 4)
    assert m.loc[4, "rule"] == "guardianship" and m.loc[4, "role"] == "child"
    assert tables.families.set_index("head_person_id").loc[uncle, "family_type"] == "couple_kids"


def test_a_person_registered_at_two_addresses_counts_at_the_latest():
    c = Country()
    man = c.person(1, "M", 30, address="ул. Старая, д. 1, кв. 1", since="2010-01-01", last_name="Ким")
    c.register(man, "ул. Новая, д. 2, кв. 5", "2024-03-01")
    c.person(2, "F", 28, address="ул. Новая, д. 2, кв. 5", last_name="Ли")   # partner, no marriage record
    c.person(3, "F", 27, address="ул. Старая, д. 1, кв. 1", last_name="Пак")  # the old flat's tenant
    _, m = c.form()
    assert together(m, 1, 2) and m.loc[1, "rule"] == "cohabitation_address"
    assert apart(m, 1, 3)


def test_parents_of_a_common_child_without_a_marriage_record_are_a_couple():
    c = Country()
    dad, mum = c.person(1, "M", 29, last_name="Омаров"), c.person(2, "F", 27, last_name="Сейткали")
    c.person(3, "F", 2, last_name="Омаров")
    c.birth(3, mum, dad)
    tables, m = c.form()
    assert together(m, 1, 2, 3) and m.loc[1, "rule"] == "cohabitation_shared_child"
    assert tables.families.iloc[0].family_type == "couple_kids" and tables.families.iloc[0].head_person_id == dad


def test_divorced_parents_of_a_common_child_are_not_a_couple_even_at_one_address():
    c = Country()
    c.person(1, "M", 40)
    c.person(2, "F", 38)
    c.marry(1, 2, "2008-01-01", divorced="2019-01-01")
    c.person(3, "M", 9)
    c.birth(3, 2, 1)
    _, m = c.form()
    assert apart(m, 1, 2) and together(m, 2, 3)


def test_a_childless_couple_sharing_a_surname_and_a_flat_is_a_couple():
    c = Country()
    c.person(1, "M", 33, last_name="Петров")
    c.person(2, "F", 31, last_name="Петров")
    c.person(3, "M", 70, last_name="Сидоров")   # a lodger in the same flat: three adults, one name pair
    tables, m = c.form()
    assert together(m, 1, 2) and apart(m, 1, 3)
    assert tables.families.set_index("head_person_id").loc[1, "family_type"] == "couple"


def test_a_lodger_stays_a_family_of_their_own():
    c = Country()
    dad, mum = c.person(1, "M", 45), c.person(2, "F", 43)
    c.marry(dad, mum, "2004-01-01")
    c.person(3, "M", 12)
    c.birth(3, mum, dad)
    c.person(4, "F", 66, last_name="Жумабаев")     # lodger with the family
    c.person(5, "F", 24, address="ул. Тихая, д. 4", last_name="Нурланов")   # a woman and ...
    c.person(6, "M", 71, address="ул. Тихая, д. 4", last_name="Ахметов")    # ... her elderly lodger
    _, m = c.form()
    assert together(m, 1, 2, 3) and apart(m, 1, 4)
    assert m.loc[4, "rule"] == "one_person"
    assert apart(m, 5, 6)   # 47 years apart, different surnames: not a couple


def test_a_minor_without_a_birth_record_joins_the_family_at_their_address():
    c = Country()
    c.person(1, "M", 34, last_name="Қасымов")
    c.person(2, "F", 33, last_name="Қасымов")
    c.marry(1, 2, "2015-01-01")
    c.person(3, "M", 1, last_name="Қасымов")
    _, m = c.form()
    assert together(m, 1, 2, 3) and m.loc[3, "rule"] == "child_address"


def test_every_resident_is_in_exactly_one_family_and_non_residents_in_none():
    c = Country()
    c.person(1, "M", 40)
    c.person(2, "F", 39)
    c.person(3, "F", 38, address="ул. Ленина, д. 2")
    c.marry(1, 2, "2010-01-01")
    c.marry(1, 3, "2010-01-01")        # two marriages on one day: one wins, deterministically
    c.person(4, "M", 10)
    c.birth(4, 2, 1)
    c.birth(4, 3, 1)                   # a duplicate birth record naming another mother
    c.ward(4, 3)                       # and a guardian
    c.person(5, "M", 30, resident=False)  # a fragment no population register knows
    c.person(6, "M", 17, address=None)    # a minor nobody links to
    tables, m = c.form()
    assert m.index.is_unique and set(m.index) == {1, 2, 3, 4, 6}
    assert tables.families.members.sum() == len(m)
    assert set(tables.families.head_person_id) <= set(m.index)
    assert (m.groupby("family_id").role.apply(lambda r: (r.isin(["head", "single"])).sum()) == 1).all()
    assert tables.stats["golden_alive_not_resident"] == 1


def test_same_input_in_any_order_gives_identical_families():
    c = Country()
    for i in range(0, 60, 4):
        dad, mum = c.person(i + 1, "M", 30 + i % 20, address=f"ул. Абая, д. {i}"), c.person(i + 2, "F", 28 + i % 20, address=f"ул. Абая, д. {i}")
        c.marry(dad, mum, f"20{10 + i % 10}-01-01")
        c.person(i + 3, "M", i % 17, address=f"ул. Абая, д. {i}")
        c.birth(i + 3, mum, dad)
        c.person(i + 4, "F", 20 + i % 5, address=f"ул. Абая, д. {i}")
        c.birth(i + 4, mum, dad)
        if i % 8 == 0:
            c.study(i + 4)
        if i % 12 == 0:   # conflicting duplicates: a second marriage and a second birth record
            c.marry(dad, c.person(100 + i, "F", 30, address=f"ул. Абая, д. {i}"), f"20{10 + i % 10}-01-01")
            c.birth(i + 3, 100 + i, dad)
    first = form_families(c.inputs())
    shuffled = c.inputs()
    shuffled = FormationInputs(**{k: (v.sample(frac=1, random_state=3) if isinstance(v, pd.DataFrame) else v)
                                  for k, v in vars(shuffled).items()})
    second = form_families(shuffled)
    pd.testing.assert_frame_equal(first.members, second.members)
    pd.testing.assert_frame_equal(first.families, second.families)
    assert first.stats == second.stats


@pytest.mark.parametrize("gap,paired", [(-6, False), (-5, True), (13, True), (14, False)])
def test_cohabitation_age_gap_bounds(gap, paired):
    c = Country()
    c.person(1, "M", 40 + gap, last_name="Ким")
    c.person(2, "F", 40, last_name="Ли")
    _, m = c.form()
    assert together(m, 1, 2) == paired


def test_a_dependent_childs_own_baby_stays_in_the_same_family():
    c = Country()
    c.person(1, "M", 45)
    c.person(2, "F", 43)
    c.marry(1, 2, "2005-01-01")
    c.person(3, "F", 17)
    c.birth(3, 2, 1)
    c.person(4, "M", 0)
    c.birth(4, 3)            # the 17-year-old's son, no father on record
    tables, m = c.form()
    assert together(m, 1, 2, 3, 4) and len(tables.families) == 1
    assert m.loc[4, "role"] == "child" and m.loc[3, "role"] == "child"

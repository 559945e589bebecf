"""The synthetic country's entity tables and their columns (see README.md beside this file).

The catalog loader checks every registry against this schema, so a column that maps to
nothing fails when the catalog loads, not halfway through a generation run.
"""

from __future__ import annotations

PERSON_ATTRIBUTES = (
    "person_id", "iin", "last_name", "first_name", "patronymic", "sex", "birth_date",
    "death_date", "alive", "age", "citizenship", "ethnicity", "region", "settlement_id",
    "settlement_name", "settlement_type", "address_id", "address", "registered_since",
    "registration", "family_id", "family_role", "employed", "employer_bin", "wage", "pensioner",
    "pension", "unemployed", "education", "student", "disability_group", "criminal_record",
    "psychiatric", "narcological", "incapable", "occupation", "state_language",
    "health_insured", "clinic_id",
)

ENTITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "persons": PERSON_ATTRIBUTES,
    "families": (
        "family_id", "region", "settlement_id", "settlement_type", "address_id", "members",
        "children", "income_pc", "consumption_pc", "welfare", "poor", "food_insecure",
    ),
    "marriages": ("marriage_id", "husband_id", "wife_id", "marriage_date", "divorce_date", "region"),
    "births": ("birth_id", "child_id", "mother_id", "father_id", "birth_date", "region"),
    "deaths": ("death_id", "person_id", "death_date", "region", "cause"),
    "real_estate": (
        "property_id", "owner_id", "region", "settlement_id", "kind", "area_m2", "acquired_date",
        "disposed_date", "cadastral_no", "value",
    ),
    "land_plots": ("plot_id", "owner_id", "region", "settlement_id", "area_ha", "purpose", "cadastral_no"),
    "vehicles": ("vehicle_id", "owner_id", "plate", "vin", "make", "model_year", "registered_date", "value"),
    "businesses": ("business_id", "bin", "owner_id", "kind", "registered_date", "name", "status", "revenue"),
    "animals": (
        "animal_id", "tag", "species", "sex", "birth_date", "owner_id", "region", "settlement_id",
        "settlement_name",
    ),
    "loans": ("loan_id", "borrower_id", "lender_bin", "amount", "balance", "overdue_days", "issued_date"),
    "payments": ("payment_id", "person_id", "benefit", "amount", "period"),
    "housing_queue": ("entry_id", "person_id", "region", "queue_date", "category", "queue_no", "truth_reasons"),
}

#: person-reference group -> id column in the entity table ("subject" -> person_id)
def group_id_column(group: str) -> str:
    return "person_id" if group == "subject" else f"{group}_id"

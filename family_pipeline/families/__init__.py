"""Families: persons grouped into families from civil-status records and addresses, and the
wide ``family_features`` table described by ``seeds/family_features.yaml``. No Dagster here.

``formation`` holds the rules (documented in its docstring), ``sources`` reads what they need
from the lake, ``features`` computes the parameters, ``dictionary`` loads their data dictionary.
"""

from family_pipeline.families.dictionary import (
    FEATURES_FILE,
    GUARANTEED_FEATURES,
    FeatureDictionary,
    FeatureSpec,
    FormationSettings,
    feature_dictionary,
    load_feature_dictionary,
)
from family_pipeline.families.features import family_features
from family_pipeline.families.formation import RULES, FamilyTables, FormationRules, form_families
from family_pipeline.families.sources import FormationInputs, formation_inputs, reference_date

__all__ = [
    "FEATURES_FILE",
    "GUARANTEED_FEATURES",
    "RULES",
    "FamilyTables",
    "FeatureDictionary",
    "FeatureSpec",
    "FormationInputs",
    "FormationRules",
    "FormationSettings",
    "family_features",
    "feature_dictionary",
    "form_families",
    "formation_inputs",
    "load_feature_dictionary",
    "reference_date",
]

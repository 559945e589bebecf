"""Families: persons grouped into families from civil-status records and addresses, and the
wide ``family_features`` table described by ``seeds/family_features.yaml``. No Dagster here."""

from family_pipeline.families.dictionary import (
    GUARANTEED_FEATURES,
    FeatureDictionary,
    FeatureSpec,
    feature_dictionary,
    load_feature_dictionary,
)

__all__ = [
    "GUARANTEED_FEATURES",
    "FeatureDictionary",
    "FeatureSpec",
    "feature_dictionary",
    "load_feature_dictionary",
]

"""Inclusion and exclusion errors of the lowest categories, on literal families."""

import pandas as pd

from family_pipeline.evaluation.scoring import category_errors, scoring_accuracy


def test_inclusion_and_exclusion_errors_count_the_right_families():
    placed = [True, True, True, True, False, False, False, False, False, False]
    poor = [True, True, True, False, True, False, False, False, False, False]
    errors = category_errors(placed, poor)
    # 1 of the 4 placed families is not poor; 1 of the 4 poor families is placed elsewhere
    assert errors == {"families": 10, "placed": 4, "truly_poor": 4, "inclusion_error": 0.25, "exclusion_error": 0.25}
    assert category_errors([False, False], [False, False])["inclusion_error"] == 0.0


def test_accuracy_is_split_by_region_and_settlement_and_per_model():
    scores = pd.DataFrame({
        "region": ["KZ-61", "KZ-61", "KZ-71", "KZ-71"],
        "settlement_type": ["village", "village", "city", "city"],
        "ae_category": ["E", "A", "D", "B"],
        "pilot_category": [1, 2, 4, 6],
        "poor": [True, False, False, True],
        "food_insecure": [True, False, False, False],
    })
    report = scoring_accuracy(scores)
    ae, pilot = report["ae_map"], report["pilot"]
    assert ae["lowest_categories"] == ["D", "E"] and pilot["lowest_categories"] == ["1", "2"]
    assert ae["inclusion_error"] == 0.5 and ae["exclusion_error"] == 0.5
    assert ae["by_region"]["KZ-61"]["inclusion_error"] == 0.0 and ae["by_region"]["KZ-71"]["exclusion_error"] == 1.0
    assert ae["by_settlement_type"]["city"]["placed"] == 1
    assert pilot["inclusion_error"] == 0.5 and pilot["exclusion_error"] == 0.5
    assert ae["lowest_vs_food_insecure"]["inclusion_error"] == 0.0
    assert ae["distribution"] == {"A": 1, "B": 1, "D": 1, "E": 1}
    assert pilot["distribution"] == {"1": 1, "2": 1, "4": 1, "6": 1}

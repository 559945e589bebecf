"""Scoring: every family placed on the A–E map and into the six-category pilot, with reasons.

Plain logic, no Dagster: ``seeds`` (the validated scoring seeds), ``welfare`` (estimated
consumption and the poverty line), ``ae_map``, ``pilot``, and ``family_scores`` which runs both.
"""

from family_pipeline.scoring.family_scores import SCORE_COLUMNS, category_summary, score_families
from family_pipeline.scoring.seeds import ScoringSeedError, ScoringSeeds, load_scoring_seeds, scoring_seeds

__all__ = ["SCORE_COLUMNS", "ScoringSeedError", "ScoringSeeds", "category_summary", "load_scoring_seeds",
           "score_families", "scoring_seeds"]

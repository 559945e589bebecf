"""Proactive services: the social-housing queue audit, juror long-lists and benefit assignment.

Plain logic over columnar frames (no Dagster here); ``family_pipeline/defs/services.py`` wires it
into assets. Rules and parameters come from ``seeds/services/*.yaml`` through ``rules``.
"""

from family_pipeline.services.rules import benefit_rules, housing_rules, juror_rules

__all__ = ["benefit_rules", "housing_rules", "juror_rules"]

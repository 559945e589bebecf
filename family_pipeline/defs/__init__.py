"""Dagster definitions, one module per asset group in data-flow order.

Everything in this package is loaded by ``family_pipeline.definitions``; reusable logic lives in
the stage packages beside it (``family_pipeline.ingestion``, ``family_pipeline.synth``, …).
"""

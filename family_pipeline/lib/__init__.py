"""Building blocks shared by several stages (identifiers, the data lake layout).

Nothing here imports Dagster; the ``defs`` package wires these into assets.
"""

"""The one wiring point: load the ``defs`` folder and apply cross-cutting policy."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    loaded = dg.load_from_defs_folder(project_root=Path(__file__).resolve().parent.parent)
    return dg.Definitions.merge(
        loaded,
        # 80+ small registry steps on 2 cores: one process beats a process per step
        # (each would import pandas, pyarrow and GX again; see ../shared/STACK.md).
        dg.Definitions(executor=dg.in_process_executor),
    )

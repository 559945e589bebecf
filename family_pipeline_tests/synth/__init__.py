"""Tests of the synthetic country."""

import hashlib
from pathlib import Path


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path: two countries compared byte for byte."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }

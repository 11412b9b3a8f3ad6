"""Where the project's reference material lives (../shared beside the checkout).

The specs, recorded ARM bodies, event samples and the StorageBlobLogs schema are read from
there, never copied into the repository. One variable, CONTAINMENT_SHARED_DIR, moves it.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class SharedMaterialMissing(RuntimeError):
    """../shared (or CONTAINMENT_SHARED_DIR) is absent: the check that needs it cannot run."""


def shared_dir() -> Path:
    configured = os.environ.get("CONTAINMENT_SHARED_DIR")
    path = Path(configured) if configured else REPO_ROOT.parent / "shared"
    if not path.is_dir():
        raise SharedMaterialMissing(
            f"the shared reference material is not at {path}: clone the project with its "
            "'shared' folder beside the checkout, or set CONTAINMENT_SHARED_DIR to its path"
        )
    return path


def shared_file(*parts: str) -> Path:
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        raise SharedMaterialMissing(f"{path} is missing from the shared reference material")
    return path

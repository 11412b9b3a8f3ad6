"""Settings as the app loads them: validated against the registry's names."""
from __future__ import annotations

from typing import Mapping

from containment.core import settings as core
from containment.plan.registry import VOCABULARY


def load_settings(environ: Mapping[str, str]) -> core.Settings:
    return core.load_settings(environ, VOCABULARY)

"""Which resources hold synthetic data: the scope tag, or an ID under a protected scope.

A protected scope keeps protecting a resource whose tag was removed, so removing the tag
is not a way to switch the app off for one account.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from containment.core.ids import ResourceId
from containment.core.settings import Settings


@dataclass(frozen=True)
class Protection:
    tagged: bool
    protected_scope: str | None

    @property
    def protected(self) -> bool:
        return self.tagged or self.protected_scope is not None

    def describe(self) -> str:
        reasons = []
        if self.tagged:
            reasons.append("carries the scope tag")
        if self.protected_scope:
            reasons.append(f"lies under protected scope {self.protected_scope}")
        return " and ".join(reasons) or "neither tagged nor under a protected scope"


# Characters that show as nothing: a tag value holding one must not read as another value.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def _normalised(text: str) -> str:
    """For comparing tags: Unicode NFKC, invisible characters removed, trimmed, case folded.
    Tag names are case-insensitive in ARM; values are compared the same way here, so that
    `Synthetic` or a value with a zero-width character does not un-protect an account."""
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE).strip().casefold()


def has_scope_tag(tags: object, settings: Settings) -> bool:
    if not isinstance(tags, dict):
        return False
    name, value = (_normalised(part) for part in settings.scope_tag)
    return any(isinstance(k, str) and _normalised(k) == name and isinstance(v, str) and _normalised(v) == value
               for k, v in tags.items())


def protection_of(resource: ResourceId, tags: object, settings: Settings) -> Protection:
    scope = next((s for s in settings.protected_scopes if resource.is_within(s)), None)
    return Protection(tagged=has_scope_tag(tags, settings), protected_scope=scope)

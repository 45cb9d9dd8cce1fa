"""Entity roles from the words before an entity: "from checking", "into savings".

The tagger learns roles when training examples annotate them; this fills in a role
only where it gave none, from cue words right before the entity (skipping "my",
"the", ...).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping, Sequence

from intentbridge.types import Entity

DEFAULT_CUES: Mapping[str, Sequence[str]] = {
    "from": ("from", "out of", "off", "taken from", "withdrawn from"),
    "to": ("to", "into", "in to", "onto", "towards", "toward"),
}
_SKIP = r"(?:(?:my|our|your|the|a|an|his|her|their|this|that)\s+)*"


def _cue_pattern(cue: str) -> str:
    words = r"\s+".join(re.escape(w) for w in cue.split())
    return rf"\b{words}\s+{_SKIP}$"


class RoleResolver:
    """Gives role-less entities a role from the preceding cue words.

    ``entities`` limits which entity names get roles (e.g. ``{"account"}``).

    >>> r = RoleResolver({"account"})
    >>> text = "move 5 euros from my checking"
    >>> r.resolve(text, [Entity("account", "checking", 21, 29, "checking")])[0].role
    'from'
    """

    def __init__(
        self,
        entities: Collection[str],
        cues: Mapping[str, Sequence[str]] = DEFAULT_CUES,
    ) -> None:
        self.entities = frozenset(entities)
        # longest cue first so "out of" wins over a shorter cue ending the same way
        pairs = sorted(
            ((cue, role) for role, words in cues.items() for cue in words),
            key=lambda p: -len(p[0]),
        )
        self._cues = [(re.compile(_cue_pattern(cue), re.IGNORECASE), role) for cue, role in pairs]

    def role_for(self, text: str, start: int) -> str | None:
        """The role implied by the words just before offset ``start``, if any."""
        before = text[max(0, start - 40) : start]
        for rx, role in self._cues:
            if rx.search(before):
                return role
        return None

    def resolve(self, text: str, entities: Sequence[Entity]) -> list[Entity]:
        """``entities`` with roles filled in where a cue says so."""
        out: list[Entity] = []
        for ent in entities:
            role = (
                self.role_for(text, ent.start)
                if ent.role is None and ent.entity in self.entities
                else None
            )
            out.append(dataclasses.replace(ent, role=role) if role is not None else ent)
        return out

"""What is spoken for a message (播报文稿): the title and text handed to speech synthesis.

Warnings, drills and cancellations are framed by the county's templates (county prefix, 演练 framing,
解除 wording); a daily programme is read as written. Owns that rule; never renders audio itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from broadcast.audio.templates import TemplateSet
from broadcast.model import MessageDraft, SourceKind


class Script(Protocol):
    def __call__(self, draft: MessageDraft) -> tuple[str, str]: ...


def plain_script(draft: MessageDraft) -> tuple[str, str]:
    """The draft's own title and text (tests and tools without templates)."""
    return draft.primary.title, draft.primary.text


class CountyScript:
    """The county's script: templates for warnings and drills, programmes as written."""

    def __init__(self, templates: TemplateSet, county_name: str, normalise: Callable[[str], str]) -> None:
        self._templates = templates
        self._county = county_name
        self._normalise = normalise

    def __call__(self, draft: MessageDraft) -> tuple[str, str]:
        if draft.source.kind is SourceKind.SCHEDULE and not draft.msg_type.is_drill:
            # A daily programme is read as written, not framed as a warning.
            return draft.primary.title, self._normalise(draft.primary.text)
        spoken = self._templates.render(draft, county_name=self._county)
        return spoken.title, spoken.body

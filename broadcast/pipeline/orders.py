"""The delivery order (播发指令) of a broadcast and the one rule for the audio URL terminals fetch.

A rendered or uploaded file is served by digest (``/audio/<digest>.<format>``); tone-first playout is
served live (``/audio/live/<ebm_id>.mp3``). Pure; never does I/O.
"""

from __future__ import annotations

from broadcast.model import AudioRef, DeliveryOrder, MessageDraft


def audio_file_url(base_url: str, digest: str, fmt: str) -> str:
    return f"{base_url.rstrip('/')}/audio/{digest}.{fmt}"


def live_audio_url(base_url: str, ebm_id: str) -> str:
    return f"{base_url.rstrip('/')}/audio/live/{ebm_id}.mp3"


def delivery_order(ebm_id: str, draft: MessageDraft, audio: AudioRef | None, *, base_url: str) -> DeliveryOrder:
    """The order every adapter gets for this broadcast; ``audio`` None means the live stream."""
    url = (
        audio_file_url(base_url, audio.digest, audio.format)
        if audio is not None
        else live_audio_url(base_url, ebm_id)
    )
    return DeliveryOrder(
        ebm_id=ebm_id,
        msg_type=draft.msg_type,
        severity=draft.severity,
        event_type=draft.event_type,
        priority=draft.priority,
        start_at=draft.start_at,
        end_at=draft.end_at,
        title=draft.primary.title,
        audio_url=url,
        audio=audio,
        volume=draft.volume if draft.volume is not None else 100,
    )

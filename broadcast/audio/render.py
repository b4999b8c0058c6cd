"""Programme rendering (音频制作): text → attention tone + speech (+ repeats) + closing tone → MP3/WAV.

Owns: the programme layout, choosing an engine through ``EngineChain``, loudness normalisation and
encoding with ffmpeg, and the content key that makes a repeated render free. For tone-first playout
(``broadcast.audio.playout``) it also renders the speech alone (``Layout.SPEECH``) and the chimes as
separately encoded MP3 parts (``chime_segments``) that concatenate into the same programme.

Digests: ``RenderedAudio.ref.digest`` is the sha256 hex of the *encoded file's bytes* (the cache is
content-addressed, so a URL made from it serves exactly those bytes and terminals can verify them). The
*content key* (engine, voice, settings, normalised text, layout, output options) is separate and only
used to find an earlier render.

Must never: block the event loop (synthesis runs on the engine's own thread, ffmpeg in a subprocess,
disk I/O via ``asyncio.to_thread``), mix two voices in one programme, or play anything itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from broadcast.audio.cache import AudioCache, content_key
from broadcast.audio.encode import encode, filter_pcm, level_filter, to_work_pcm
from broadcast.audio.encode_options import (
    RMS_ABOVE_LUFS_DB,
    WORK_RATE,
    EncodeOptions,
    Loudness,
    OutputFormat,
    pcm_input_args,
)
from broadcast.audio.engines import EngineChain, Speech, SpeechFormat, TtsEngine
from broadcast.audio.mp3parts import encode_mp3, mp3_duration_s
from broadcast.audio.tone import TONE_VERSION, chime_pcm, silence_pcm
from broadcast.model import AudioRef

__all__ = ["AudioRenderer", "ChimeSegments", "Layout", "RenderedAudio"]

RENDER_VERSION = 4  # part of the content key: bump when the layout or encoding changes
LEAD_IN_S = 0.3  # after the opening chime
TITLE_GAP_S = 0.6  # between title and body
LEAD_OUT_S = 0.5  # before the closing chime
MAX_REPEATS = 10


class Layout(StrEnum):
    """What a render contains."""

    FULL = "full"  # opening chime, lead-in, speech (+ repeats), lead-out, closing chime
    SPEECH = "speech"  # the speech (+ repeats) only: ``ChimeSegments`` supply the rest (tone-first playout)


@dataclass(frozen=True)
class ChimeSegments:
    """The chimes of a programme pre-encoded as MP3 with the renderer's options, so that
    ``opening + <Layout.SPEECH render> + closing`` is one valid MP3 stream laid out like ``Layout.FULL``
    (each part is a whole number of self-contained frames: no bit reservoir crosses a join)."""

    opening: bytes  # opening chime + lead-in silence
    closing: bytes  # lead-out silence + closing chime
    opening_s: float  # playing time of ``opening`` as encoded (encoder delay and padding included)
    closing_s: float


@dataclass(frozen=True)
class RenderedAudio:
    """A rendered programme: its reference (digest = sha256 of the file bytes) and where it lies."""

    ref: AudioRef
    path: Path
    from_cache: bool = False


class AudioRenderer:
    """Render text programmes into the cache.

    ``engines`` may be a list (tried in order, wrapped in an ``EngineChain`` with the system clock) or a
    ready ``EngineChain`` (to inject a clock or back-off). ``None`` means the offline engine only.
    """

    def __init__(
        self,
        cache: AudioCache,
        engines: Sequence[TtsEngine] | EngineChain | None = None,
        *,
        options: EncodeOptions | None = None,
        normalise: Callable[[str], str] | None = None,
        ffmpeg_timeout_s: float = 120.0,
    ) -> None:
        if engines is None:
            from broadcast.audio.espeak import EspeakEngine

            engines = [EspeakEngine()]
        self.chain = engines if isinstance(engines, EngineChain) else EngineChain(engines)
        self.cache = cache
        self.options = options or EncodeOptions()
        self._normalise = normalise
        self._ffmpeg_timeout_s = ffmpeg_timeout_s
        self._inflight: dict[str, asyncio.Task[RenderedAudio]] = {}
        self._chimes: asyncio.Task[ChimeSegments] | None = None
        self._silences: dict[float, asyncio.Task[bytes]] = {}

    async def chime_segments(self) -> ChimeSegments:
        """The opening and closing chime as MP3 (encoded once per renderer, ≈60 ms, then free)."""
        if self._chimes is None or (self._chimes.done() and self._chimes.exception() is not None):
            self._chimes = asyncio.ensure_future(self._encode_chimes())
        return await asyncio.shield(self._chimes)

    async def _encode_chimes(self) -> ChimeSegments:
        opening_pcm = chime_pcm(WORK_RATE) + silence_pcm(WORK_RATE, LEAD_IN_S)
        closing_pcm = silence_pcm(WORK_RATE, LEAD_OUT_S) + chime_pcm(WORK_RATE, closing=True)
        opening, closing = await asyncio.gather(
            encode(opening_pcm, OutputFormat.MP3, self.options, timeout_s=self._ffmpeg_timeout_s),
            encode(closing_pcm, OutputFormat.MP3, self.options, timeout_s=self._ffmpeg_timeout_s),
        )
        return ChimeSegments(
            opening, closing, mp3_duration_s(opening, self.options), mp3_duration_s(closing, self.options)
        )

    async def render(
        self,
        title: str,
        text: str,
        *,
        repeats: int = 1,
        gap_s: float = 1.0,
        fmt: OutputFormat | str = OutputFormat.MP3,
        normalise: Callable[[str], str] | None = None,
        layout: Layout | str = Layout.FULL,
    ) -> RenderedAudio:
        """Render (or find in the cache) the programme for ``title`` + ``text``.

        ``layout=Layout.SPEECH`` leaves out the chimes, lead-in and lead-out (tone-first playout puts the
        pre-encoded ``chime_segments()`` around it); it is MP3 only.

        ``normalise`` (or the renderer's default) rewrites text for speech before anything else; the
        cache key covers the normalised text. ``ref.engine``/``ref.voice`` say who spoke. While the file
        is being broadcast, keep it with ``cache.pin(ref.digest)`` / ``unpin`` so eviction skips it.
        Raises ``ValueError`` (bad request), ``AllEnginesFailed`` or ``FfmpegError``.
        """
        fmt = OutputFormat(fmt)
        layout = Layout(layout)
        if layout is Layout.SPEECH and fmt is not OutputFormat.MP3:
            raise ValueError("a speech-only render is for MP3 playout; use layout=full for WAV")
        if not 1 <= repeats <= MAX_REPEATS:
            raise ValueError(f"repeats must be between 1 and {MAX_REPEATS}, got {repeats}")
        if not 0 <= gap_s <= 30:
            raise ValueError(f"gap_s must be between 0 and 30 seconds, got {gap_s}")
        norm = normalise or self._normalise
        title_n = (norm(title) if norm else title).strip()
        text_n = (norm(text) if norm else text).strip()
        if not title_n and not text_n:
            raise ValueError("nothing to say: title and text are both empty")
        request = content_key(
            title=title_n, text=text_n, repeats=repeats, gap_s=gap_s, fmt=str(fmt), layout=str(layout)
        )
        running = self._inflight.get(request)
        if running is None:
            running = asyncio.ensure_future(self._render(title_n, text_n, repeats, gap_s, fmt, layout))
            self._inflight[request] = running
            running.add_done_callback(lambda _t: self._inflight.pop(request, None))
        return await asyncio.shield(running)

    def key_for(
        self,
        engine: TtsEngine,
        title: str,
        text: str,
        repeats: int,
        gap_s: float,
        fmt: OutputFormat,
        layout: Layout = Layout.FULL,
    ) -> str:
        o = self.options
        extra: dict[str, object] = {} if layout is Layout.FULL else {"layout": str(layout)}
        loud: list[object] | None = None
        if o.loudnorm:
            loud = [o.loudness_i, o.true_peak, str(o.loudness)]
            if Loudness(o.loudness) is Loudness.GAIN:
                loud.append(RMS_ABOVE_LUFS_DB)
        return content_key(
            **extra,
            v=RENDER_VERSION,
            tone=TONE_VERSION,
            engine=engine.name,
            voice=engine.voice,
            settings=engine.settings,
            title=title,
            text=text,
            repeats=repeats,
            gap_s=gap_s,
            fmt=str(fmt),
            mp3=[o.mp3_rate, o.mp3_bitrate_k, o.mp3_quality] if fmt is OutputFormat.MP3 else None,
            wav=o.wav_rate if fmt is OutputFormat.WAV else None,
            loud=loud,
        )

    async def _render(
        self, title: str, text: str, repeats: int, gap_s: float, fmt: OutputFormat, layout: Layout
    ) -> RenderedAudio:
        # Prefer the best engine that is up: a cached render by a better engine wins; a cached render by
        # a fallback engine is used only while every better engine is backed off.
        for engine in self.chain.engines:
            key = self.key_for(engine, title, text, repeats, gap_s, fmt, layout)
            ref = await asyncio.to_thread(self.cache.lookup, key)
            if ref is not None:
                hit = self.cache.path_for(ref.digest, ref.format)
                if hit is not None:
                    return RenderedAudio(ref, hit, from_cache=True)
            if self.chain.available(engine):
                break
        texts = [t for t in (title, text) if t]
        engine, speeches = await self.chain.synth_all(texts)
        parts = [await self._to_work_pcm(s) for s in speeches]
        # Title and text come from one engine and voice: one level for both, applied while encoding.
        audio_filter = level_filter(self.options, parts)
        one = silence_pcm(WORK_RATE, TITLE_GAP_S).join(parts)
        if fmt is OutputFormat.MP3:
            data = await self._assemble_mp3(one, audio_filter, repeats, gap_s, layout)
            duration_s = mp3_duration_s(data, self.options)
        else:
            if audio_filter is not None:
                one = await filter_pcm(one, audio_filter, timeout_s=self._ffmpeg_timeout_s)
            pcm = self._layout(one, repeats, gap_s, layout)
            data = await encode(pcm, fmt, self.options, timeout_s=self._ffmpeg_timeout_s)
            duration_s = len(pcm) / 2 / WORK_RATE
        digest, path = await asyncio.to_thread(self.cache.put, data, str(fmt))
        ref = AudioRef(
            digest=digest,
            format=str(fmt),
            duration_s=round(duration_s, 3),
            engine=engine.name,
            voice=engine.voice,
        )
        key = self.key_for(engine, title, text, repeats, gap_s, fmt, layout)
        await asyncio.to_thread(self.cache.bind, key, ref)
        return RenderedAudio(ref, path)

    async def _assemble_mp3(
        self, one: bytes, audio_filter: str | None, repeats: int, gap_s: float, layout: Layout
    ) -> bytes:
        """Encode the speech once (in parallel parts) and build the programme from encoded pieces: the
        repeats reuse the same bytes, the gap and the chimes are encoded once per renderer."""
        speech, gap = await asyncio.gather(
            encode_mp3(one, self.options, audio_filter=audio_filter, timeout_s=self._ffmpeg_timeout_s),
            self._silence_mp3(gap_s if repeats > 1 else 0.0),
        )
        body = gap.join([speech] * repeats)
        if layout is Layout.SPEECH:
            return body
        chimes = await self.chime_segments()
        return chimes.opening + body + chimes.closing

    async def _silence_mp3(self, seconds: float) -> bytes:
        if seconds <= 0:
            return b""
        task = self._silences.get(seconds)
        if task is None or (task.done() and task.exception() is not None):
            pcm = silence_pcm(WORK_RATE, seconds)
            task = asyncio.ensure_future(
                encode(pcm, OutputFormat.MP3, self.options, timeout_s=self._ffmpeg_timeout_s)
            )
            self._silences[seconds] = task
        return await asyncio.shield(task)

    def _layout(self, one: bytes, repeats: int, gap_s: float, layout: Layout) -> bytes:
        body = silence_pcm(WORK_RATE, gap_s).join([one] * repeats)
        if layout is Layout.SPEECH:
            return body
        return b"".join(
            (
                chime_pcm(WORK_RATE),
                silence_pcm(WORK_RATE, LEAD_IN_S),
                body,
                silence_pcm(WORK_RATE, LEAD_OUT_S),
                chime_pcm(WORK_RATE, closing=True),
            )
        )

    async def _to_work_pcm(self, speech: Speech) -> bytes:
        """Speech as work-rate PCM, not yet levelled (``level_filter`` does that while encoding)."""
        if speech.format is SpeechFormat.PCM_S16LE:
            if speech.sample_rate == WORK_RATE:
                return speech.data
            src = pcm_input_args(speech.sample_rate)
        else:
            src = ["-f", "mp3"]
        return await to_work_pcm(
            speech.data,
            src,
            replace(self.options, loudnorm=False),
            what=f"prepare speech from {speech.engine}",
            timeout_s=self._ffmpeg_timeout_s,
        )

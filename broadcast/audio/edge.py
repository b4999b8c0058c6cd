"""Online neural speech through the ``edge-tts`` package (在线语音合成).

Owns: calling ``edge_tts.Communicate`` with the configured voice, rate, volume and pitch under a hard
deadline, checking that what came back is complete speech (the library does not notice a connection that
closes mid-stream), and classifying every failure as a ``TtsError``.

Must never: retry or back off on its own (``EngineChain`` does), block the event loop, or let a library or
network exception escape unclassified. The endpoint is ``edge_tts.communicate.WSS_URL``; tests point it at
a local stand-in and never reach the internet.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from typing import Any

import aiohttp
import edge_tts
from edge_tts import exceptions as edge_exc

from broadcast.audio.engines import Speech, SpeechFormat, TtsError, TtsFailure

log = logging.getLogger(__name__)

# Some voices useful in a county of mainland China; any voice the service knows is accepted.
KNOWN_VOICES: dict[str, str] = {
    "zh-CN-XiaoxiaoNeural": "普通话 女声",
    "zh-CN-YunyangNeural": "普通话 男声（新闻）",
    "zh-CN-YunxiNeural": "普通话 男声",
    "zh-CN-liaoning-XiaobeiNeural": "东北话 女声",
    "zh-CN-shaanxi-XiaoniNeural": "陕西话 女声",
    "zh-HK-HiuGaaiNeural": "粤语 女声",
    "zh-TW-HsiaoChenNeural": "台湾普通话 女声",
}

EDGE_SAMPLE_RATE = 24_000  # the service answers audio-24khz-48kbitrate-mono-mp3
EDGE_BYTES_PER_S = 48_000 // 8
TICKS_PER_S = 10_000_000  # metadata offsets are in 100 ns ticks


def _content_chars(text: str) -> int:
    """Characters that are spoken: letters, digits and Han characters (not spaces or punctuation)."""
    return sum(1 for c in text if unicodedata.category(c)[0] in ("L", "N"))


class EdgeTtsEngine:
    """Microsoft Edge read-aloud voices via ``edge-tts``. Rates/volumes are edge-tts strings ("+0%")."""

    name = "edge-tts"

    def __init__(
        self,
        voice: str = "zh-CN-XiaoxiaoNeural",
        *,
        rate: str = "-10%",
        volume: str = "+0%",
        pitch: str = "+0Hz",
        connect_timeout_s: int = 5,
        receive_timeout_s: int = 10,
        total_timeout_s: float = 60.0,
        proxy: str | None = None,
    ) -> None:
        # Let edge-tts validate voice/rate/volume/pitch now, so a bad config fails at start-up.
        edge_tts.Communicate("测试", voice, rate=rate, volume=volume, pitch=pitch)
        self.voice = voice
        self.rate = rate
        self.volume = volume
        self.pitch = pitch
        self.connect_timeout_s = connect_timeout_s
        self.receive_timeout_s = receive_timeout_s
        self.total_timeout_s = total_timeout_s
        self.proxy = proxy

    @property
    def settings(self) -> str:
        return f"rate={self.rate};volume={self.volume};pitch={self.pitch}"

    async def synth(self, text: str) -> Speech:
        try:
            async with asyncio.timeout(self.total_timeout_s):
                audio, boundaries = await self._stream(text)
        except TimeoutError as e:  # also aiohttp.ServerTimeoutError, which is a TimeoutError
            detail = f"no complete answer within {self.total_timeout_s} s"
            raise self._error(TtsFailure.TIMEOUT, detail) from e
        except aiohttp.ClientResponseError as e:  # its str() carries the signed URL: keep it out of logs
            raise self._error(TtsFailure.UNAVAILABLE, f"HTTP {e.status} {e.message}") from e
        except aiohttp.ClientError as e:
            raise self._error(TtsFailure.UNAVAILABLE, f"{type(e).__name__}: {e}") from e
        except edge_exc.NoAudioReceived as e:
            raise self._error(TtsFailure.EMPTY, str(e)) from e
        except edge_exc.WebSocketError as e:
            raise self._error(TtsFailure.UNAVAILABLE, f"websocket error: {e}") from e
        except (edge_exc.EdgeTTSException, ValueError, KeyError, TypeError) as e:
            # ValueError includes json errors from garbled metadata
            raise self._error(TtsFailure.BAD_RESPONSE, f"{type(e).__name__}: {e}") from e
        except OSError as e:
            raise self._error(TtsFailure.UNAVAILABLE, f"{type(e).__name__}: {e}") from e
        self._check_complete(text, audio, boundaries)
        return Speech(audio, SpeechFormat.MP3, EDGE_SAMPLE_RATE, self.name, self.voice)

    async def _stream(self, text: str) -> tuple[bytes, list[dict[str, Any]]]:
        comm = edge_tts.Communicate(
            text,
            self.voice,
            rate=self.rate,
            volume=self.volume,
            pitch=self.pitch,
            boundary="SentenceBoundary",
            proxy=self.proxy,
            connect_timeout=self.connect_timeout_s,
            receive_timeout=self.receive_timeout_s,
        )
        chunks: list[bytes] = []
        boundaries: list[dict[str, Any]] = []
        async for chunk in comm.stream():
            if chunk["type"] == "audio":
                chunks.append(chunk["data"])
            elif chunk["type"] in ("SentenceBoundary", "WordBoundary"):
                boundaries.append(dict(chunk))
        return b"".join(chunks), boundaries

    def _check_complete(self, text: str, audio: bytes, boundaries: list[dict[str, Any]]) -> None:
        """edge-tts ends quietly when the socket closes mid-answer; refuse truncated speech.

        Complete means: the sentence boundaries cover the spoken characters of the text, and the audio
        lasts at least until the end of the last boundary."""
        wanted = _content_chars(text)
        if not audio:
            raise self._error(TtsFailure.EMPTY, "no audio")
        if wanted == 0:
            return
        covered = sum(_content_chars(str(b.get("text", ""))) for b in boundaries)
        if covered < 0.9 * wanted:
            raise self._error(
                TtsFailure.BAD_RESPONSE,
                f"answer covers {covered} of {wanted} characters (connection closed early?)",
            )
        last_end = max(int(b.get("offset", 0)) + int(b.get("duration", 0)) for b in boundaries) / TICKS_PER_S
        audio_s = len(audio) / EDGE_BYTES_PER_S
        if audio_s + 0.5 < last_end:
            raise self._error(
                TtsFailure.BAD_RESPONSE, f"audio stops at {audio_s:.1f} s but speech runs to {last_end:.1f} s"
            )

    def _error(self, failure: TtsFailure, detail: str) -> TtsError:
        return TtsError(self.name, failure, f"voice {self.voice}: {detail}")

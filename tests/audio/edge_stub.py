"""A local stand-in for the edge-tts WebSocket service, with levers for the failures we must survive.

Speaks the real frame format (text frames ``headers\\r\\n\\r\\nbody``; binary frames = 2-byte header length +
headers + MP3) on 127.0.0.1 with an ephemeral port. Audio is a real 24 kHz 48 kbit/s mono MP3 made by
ffmpeg, 0.15 s per character asked for.
"""

from __future__ import annotations

import asyncio
import json
import re
from enum import StrEnum

from aiohttp import WSMsgType, web

from broadcast.audio.ffmpeg import run_ffmpeg
from broadcast.audio.tone import chime_pcm

SECONDS_PER_CHAR = 0.15


class StubMode(StrEnum):
    OK = "ok"
    HANG = "hang"  # accept the request, never answer
    GARBAGE = "garbage"  # answer with a frame that is not speech
    DISCONNECT = "disconnect"  # send the metadata and part of the audio, then close
    REFUSE = "refuse"  # HTTP 503 instead of a WebSocket upgrade


class EdgeStub:
    def __init__(self) -> None:
        self.mode = StubMode.OK
        self.connections = 0
        self.texts: list[str] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._mp3: dict[int, bytes] = {}

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/edge/v1?TrustedClientToken=stub"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/edge/v1", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _audio(self, chars: int) -> bytes:
        tenths = max(5, round(chars * SECONDS_PER_CHAR * 10))
        if tenths not in self._mp3:
            pcm = b"".join([chime_pcm(24_000)] * (tenths // 15 + 1))[: tenths * 2400 * 2]
            self._mp3[tenths], _ = await run_ffmpeg(
                ["-f", "s16le", "-ar", "24000", "-ac", "1", "-i", "pipe:0", "-c:a", "libmp3lame",
                 "-b:a", "48k", "-f", "mp3", "pipe:1"],
                pcm, what="stub mp3",
            )
        return self._mp3[tenths]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        if self.mode is StubMode.REFUSE:
            return web.Response(status=503, text="unavailable")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        text = ""
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            if "Path:ssml" in msg.data:
                m = re.search(r"<prosody[^>]*>(.*)</prosody>", msg.data, re.S)
                text = m.group(1) if m else ""
                break
        self.texts.append(text)
        if self.mode is StubMode.HANG:
            await self._release.wait()
            await ws.close()
            return ws
        await ws.send_str(_text_frame("turn.start", '{"context":{"serviceTag":"stub"}}'))
        if self.mode is StubMode.GARBAGE:
            await ws.send_bytes(b"\x00\x05hello, this is not speech")
            await ws.close()
            return ws
        audio = await self._audio(len(text))
        seconds = len(audio) / 6000
        meta = {"Metadata": [{"Type": "SentenceBoundary", "Data": {
            "Offset": 1_000_000, "Duration": int((seconds - 0.2) * 10_000_000),
            "text": {"Text": text, "Length": len(text), "BoundaryType": "SentenceBoundary"}}}]}
        await ws.send_str(_text_frame("audio.metadata", json.dumps(meta, ensure_ascii=False)))
        if self.mode is StubMode.DISCONNECT:
            await ws.send_bytes(_audio_frame(audio[: len(audio) // 3]))
            await ws.close()
            return ws
        for i in range(0, len(audio), 4096):
            await ws.send_bytes(_audio_frame(audio[i : i + 4096]))
        await ws.send_bytes(_audio_frame(b"", content_type=None))
        await ws.send_str(_text_frame("turn.end", "{}"))
        await ws.close()
        return ws


def _text_frame(path: str, body: str) -> str:
    return f"X-RequestId:stub\r\nContent-Type:application/json; charset=utf-8\r\nPath:{path}\r\n\r\n{body}"


def _audio_frame(data: bytes, content_type: str | None = "audio/mpeg") -> bytes:
    headers = "X-RequestId:stub\r\n"
    if content_type:
        headers += f"Content-Type:{content_type}\r\n"
    headers += "Path:audio\r\n"
    raw = headers.encode()
    return len(raw).to_bytes(2, "big") + raw + data

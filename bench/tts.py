"""Benchmark: speech production for a 200-character warning, and tone-first playout.

Measures, in one run:
  * baseline — the offline engine's raw synthesis time for the text (espeak-ng, no layout/encoding);
  * offline render time (goal ≤ 200 ms): ``AudioRenderer.render`` with the offline engine, fresh text
    each time (full programme, and the speech-only part that tone-first playout renders);
  * cache hit (goal ≤ 5 ms): rendering the same programme again;
  * tone-first playout (goal ≤ 100 ms): with an edge-tts stand-in on 127.0.0.1 that answers after 2 s,
    the time from the message being accepted (``LiveProgrammes.start``) to the first audio byte arriving
    at an HTTP client of ``/audio/live/<ebm_id>.mp3`` — and, for contrast, when the speech arrives.

Never touches the internet: ``edge_tts.communicate.WSS_URL`` points at the stand-in below.

    .venv/bin/python bench/tts.py [--runs 5] [--edge-delay 2.0] [--edge-runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import WSMsgType, web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import edge_tts  # noqa: E402

from broadcast.audio.cache import AudioCache  # noqa: E402
from broadcast.audio.edge import EdgeTtsEngine  # noqa: E402
from broadcast.audio.encode_options import EncodeOptions, Loudness  # noqa: E402
from broadcast.audio.espeak import EspeakEngine  # noqa: E402
from broadcast.audio.ffmpeg import run_ffmpeg  # noqa: E402
from broadcast.audio.playout import LiveProgrammes  # noqa: E402
from broadcast.audio.render import AudioRenderer, Layout  # noqa: E402
from broadcast.clock import SystemClock  # noqa: E402
from broadcast.codes import ebm_id  # noqa: E402
from broadcast.web.live import live_audio_handler  # noqa: E402

PLATFORM = "45301810000000101010101"
TITLE = "安宁市气象台发布暴雨红色预警"


def warning(variant: int) -> str:
    """A 200-character warning; ``variant`` changes a figure so every render is a cache miss."""
    text = (
        f"安宁市气象台{variant % 24:02d}时发布暴雨红色预警信号：过去3小时全市降雨量已达{100 + variant % 900}毫米以上，"
        "且降雨将持续，请立即停止户外活动，远离河道、山洪沟和地质灾害隐患点，低洼地区群众请迅速转移到安全地带。"
        "学校、幼儿园停课，在校学生由学校妥善安置。请相互转告，听从村组干部指挥，不要涉水过河，不要靠近"
        "危房和陡坡。如遇险情请拨打110或119求助。"
    )
    text = (text + "请注意收听后续广播，" * 10)[:199] + "。"
    assert len(text) == 200, len(text)
    return text


# -- an edge-tts stand-in that answers after a delay ---------------------------------------------------

class SlowEdge:
    """The edge-tts WebSocket protocol on 127.0.0.1; every answer starts after ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._mp3: dict[int, bytes] = {}
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/edge/v1", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"ws://127.0.0.1:{self._runner.addresses[0][1]}/edge/v1?TrustedClientToken=bench"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _audio(self, chars: int) -> bytes:
        seconds = max(1, round(chars * 0.22))
        if seconds not in self._mp3:
            self._mp3[seconds], _ = await run_ffmpeg(
                ["-f", "lavfi", "-i", f"sine=frequency=220:duration={seconds}", "-ar", "24000", "-ac", "1",
                 "-c:a", "libmp3lame", "-b:a", "48k", "-write_xing", "0", "-f", "mp3", "pipe:1"],
                b"", what="stand-in speech",
            )
        return self._mp3[seconds]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        text = ""
        async for msg in ws:
            if msg.type is WSMsgType.TEXT and "Path:ssml" in msg.data:
                m = re.search(r"<prosody[^>]*>(.*)</prosody>", msg.data, re.S)
                text = m.group(1) if m else ""
                break
        await asyncio.sleep(self.delay_s)  # the slow service
        audio = await self._audio(len(text))
        seconds = len(audio) / 6000
        meta = {"Metadata": [{"Type": "SentenceBoundary", "Data": {
            "Offset": 1_000_000, "Duration": int((seconds - 0.2) * 10_000_000),
            "text": {"Text": text, "Length": len(text), "BoundaryType": "SentenceBoundary"}}}]}
        await ws.send_str(_text_frame("turn.start", "{}"))
        await ws.send_str(_text_frame("audio.metadata", json.dumps(meta, ensure_ascii=False)))
        for i in range(0, len(audio), 4096):
            await ws.send_bytes(_audio_frame(audio[i : i + 4096]))
        await ws.send_str(_text_frame("turn.end", "{}"))
        await ws.close()
        return ws


def _text_frame(path: str, body: str) -> str:
    return f"X-RequestId:bench\r\nContent-Type:application/json; charset=utf-8\r\nPath:{path}\r\n\r\n{body}"


def _audio_frame(data: bytes) -> bytes:
    raw = b"X-RequestId:bench\r\nContent-Type:audio/mpeg\r\nPath:audio\r\n"
    return len(raw).to_bytes(2, "big") + raw + data


# -- measuring -------------------------------------------------------------------------------------------

async def timed(runs: int, make: Callable[[int], Awaitable[object]]) -> list[float]:
    out = []
    for i in range(runs):
        t = time.perf_counter()
        await make(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def line(name: str, ms: list[float], goal_ms: float | None = None) -> float:
    med = statistics.median(ms)
    goal = f"  goal ≤ {goal_ms:g} ms: {'met' if med <= goal_ms else 'MISSED'}" if goal_ms else ""
    print(f"  {name:<48} median {med:8.1f} ms  (min {min(ms):7.1f}, max {max(ms):7.1f}, n={len(ms)}){goal}")
    return med


async def offline(runs: int, root: Path) -> None:
    engine = EspeakEngine()
    await engine.synth("预热")  # load the library once: start-up cost, not per message
    print(f"Offline engine (espeak-ng), 200-character warning, {runs} runs each:")
    base = line("baseline: raw synthesis (engine only)", await timed(runs, lambda i: engine.synth(warning(i))))
    results: dict[str, float] = {}
    # "before": the settings of the previous renderer (loudnorm, LAME's default quality, one encoder, and —
    # not reproducible any more — separate levelling passes: it measured 1.6 s loudnorm / 0.58 s gain here);
    # "after": today's defaults (gain levelling inside the encode pass, LAME quality 7, two encoders split
    # at pauses, repeats and chimes reused as encoded bytes).
    variants = (
        ("before/loudnorm", EncodeOptions(loudness=Loudness.LOUDNORM, mp3_quality=None, encode_jobs=1)),
        ("before/gain", EncodeOptions(loudness=Loudness.GAIN, mp3_quality=None, encode_jobs=1)),
        ("after/loudnorm", EncodeOptions(loudness=Loudness.LOUDNORM)),
        ("after/gain (default)", EncodeOptions()),
    )
    for label, opts in variants:
        r = AudioRenderer(AudioCache(root / f"offline-{label.replace('/', '-').split()[0]}"), [engine], options=opts)
        await r.render("", "预热")
        n = 1000 * (1 + len(results))

        def full(i: int, r: AudioRenderer = r, n: int = n) -> Awaitable[object]:
            return r.render("", warning(n + i))

        def red(i: int, r: AudioRenderer = r, n: int = n) -> Awaitable[object]:
            return r.render("", warning(n + 200 + i), repeats=3)

        def speech(i: int, r: AudioRenderer = r, n: int = n) -> Awaitable[object]:
            return r.render("", warning(n + 100 + i), layout=Layout.SPEECH)

        def again(_i: int, r: AudioRenderer = r, n: int = n) -> Awaitable[object]:
            return r.render("", warning(n))

        print(f" {label}:")
        results[f"full/{label}"] = line("render full programme", await timed(runs, full), 200)
        results[f"red/{label}"] = line("render full programme, 3 repeats (red)", await timed(runs, red))
        results[f"speech/{label}"] = line("render speech part (tone-first)", await timed(runs, speech), 200)
        if label.startswith("after/gain"):
            results[f"hit/{label}"] = line("cache hit (same programme again)", await timed(max(runs, 20), again), 5)
    for k, v in results.items():
        if not k.startswith("hit"):
            print(f"  ratio {k:<30} / raw synthesis = {v / base:5.1f}×")
    for kind in ("full", "red", "speech"):
        before, after = results[f"{kind}/before/loudnorm"], results[f"{kind}/after/gain (default)"]
        print(f"  {kind:<7} before (loudnorm, old settings) {before:7.1f} ms → after (defaults) {after:7.1f} ms: "
              f"{before / after:4.1f}× faster")


async def playout(edge_runs: int, delay_s: float, root: Path) -> None:
    stand_in = SlowEdge(delay_s)
    await stand_in.start()
    setattr(edge_tts.communicate, "WSS_URL", stand_in.url)  # noqa: B010 - the local stand-in, never the internet
    renderer = AudioRenderer(AudioCache(root / "edge"), [EdgeTtsEngine(), EspeakEngine()])
    live = LiveProgrammes(renderer, SystemClock(), fallback_text=None)
    t = time.perf_counter()
    await live.warm()
    warm_ms = (time.perf_counter() - t) * 1000
    app = web.Application()
    app.router.add_get("/audio/live/{ebm_id}.mp3", live_audio_handler(live))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    first: list[float] = []
    speech: list[float] = []
    print(f"\nTone-first playout, edge-tts stand-in answering after {delay_s:g} s "
          f"(title + text = 2 requests), {edge_runs} runs:")
    print(f"  start-up: chimes pre-encoded in {warm_ms:.0f} ms (once per process)")
    async with aiohttp.ClientSession() as http:
        for i in range(edge_runs):
            ebm = ebm_id(PLATFORM, date.today(), i + 1)
            t0 = time.perf_counter()
            prog = await live.start(ebm, TITLE, warning(5000 + i),
                                    expires_at=datetime.now(UTC) + timedelta(hours=1))
            async with http.get(f"{base}/audio/live/{ebm}.mp3") as resp:
                chunk = await resp.content.readany()
                first.append((time.perf_counter() - t0) * 1000)
                assert chunk and prog.opening.startswith(chunk[:64])
                rest = await resp.read()
                speech.append((time.perf_counter() - t0) * 1000)
            ref = await prog.result()
            assert prog.full_bytes() == chunk + rest and ref.engine == "edge-tts", ref
    line("accepted → first audio byte at the terminal", first, 100)
    line("accepted → whole programme received", speech)
    print(f"  ratio: first sound {statistics.median(speech) / statistics.median(first):.0f}× sooner "
          "than waiting for the speech (the old render-then-dispatch path)")
    await live.close()
    await runner.cleanup()
    await stand_in.stop()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--edge-runs", type=int, default=3)
    ap.add_argument("--edge-delay", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tts-") as tmp:
        await offline(args.runs, Path(tmp))
        await playout(args.edge_runs, args.edge_delay, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())

"""``ebc audio render``: render one programme from the command line (for operators and checks).

Owns: parsing the sub-command's arguments, building the engines asked for, and printing the result as
JSON. Must never: be imported by the running controller, or contact the network unless ``--engine edge``
or ``--engine chain`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from broadcast.audio.cache import DEFAULT_MAX_BYTES, AudioCache
from broadcast.audio.edge import KNOWN_VOICES, EdgeTtsEngine
from broadcast.audio.encode_options import OutputFormat
from broadcast.audio.engines import AllEnginesFailed, TtsEngine
from broadcast.audio.espeak import EspeakEngine
from broadcast.audio.ffmpeg import FfmpegError
from broadcast.audio.render import AudioRenderer


def _engines(kind: str, voice: str | None) -> list[TtsEngine]:
    if kind == "offline":
        return [EspeakEngine(voice or "cmn")]
    online = EdgeTtsEngine(voice or "zh-CN-XiaoxiaoNeural")
    return [online] if kind == "edge" else [online, EspeakEngine()]


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="ebc audio render", description="把文字制作成应急广播音频（提示音+语音）"
    )
    p.add_argument("--title", default="", help="标题（先播）")
    p.add_argument("--text", required=True, help="正文")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--gap", type=float, default=1.0, help="seconds between repeats")
    p.add_argument("--format", choices=[f.value for f in OutputFormat], default="mp3")
    p.add_argument(
        "--engine",
        choices=["offline", "edge", "chain"],
        default="offline",
        help="offline = espeak-ng; edge = edge-tts (needs internet); chain = edge, then offline",
    )
    p.add_argument("--voice", help=f"voice name, e.g. cmn / {' / '.join(KNOWN_VOICES)}")
    p.add_argument("--cache", type=Path, default=Path("var/audio"), help="audio cache directory")
    p.add_argument("--out", type=Path, help="also copy the file here")
    args = p.parse_args(list(argv))
    try:
        renderer = AudioRenderer(AudioCache(args.cache, DEFAULT_MAX_BYTES), _engines(args.engine, args.voice))
        out = asyncio.run(
            renderer.render(args.title, args.text, repeats=args.repeats, gap_s=args.gap, fmt=args.format)
        )
    except (ValueError, AllEnginesFailed, FfmpegError) as e:
        print(f"制作失败：{e}", file=sys.stderr)
        return 1
    if args.out:
        shutil.copyfile(out.path, args.out)
    print(
        json.dumps(
            {
                "digest": out.ref.digest,
                "format": out.ref.format,
                "duration_s": out.ref.duration_s,
                "engine": out.ref.engine,
                "voice": out.ref.voice,
                "path": str(out.path),
                "cached": out.from_cache,
            },
            ensure_ascii=False,
        )
    )
    return 0

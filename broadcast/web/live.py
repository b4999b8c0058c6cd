"""HTTP for tone-first playout: ``GET /audio/live/{ebm_id}.mp3`` streams a live programme (直播音频).

Owns: turning a ``LiveProgramme`` stream into a chunked ``audio/mpeg`` response — the opening chime is
written at once, the speech as soon as it is rendered — and the 404 for unknown or ended messages. A
settled programme is sent with its Content-Length (late joiners, replays).

Must never: render, wait for rendering itself (the programme bounds the wait), or buffer a whole stream
before writing. Route it with ``app.router.add_get("/audio/live/{ebm_id}.mp3", live_audio_handler(live))``
(``{ebm_id}`` may also carry the ``.mp3`` suffix if routed as ``/audio/live/{ebm_id}``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from broadcast.audio.playout import LiveProgrammes
from broadcast.codes import is_ebm_id
from broadcast.jsonhttp import json_error

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def live_audio_handler(programmes: LiveProgrammes) -> Handler:
    """An aiohttp handler serving the programmes in ``programmes``."""

    async def get_live_audio(request: web.Request) -> web.StreamResponse:
        ebm_id = request.match_info["ebm_id"].removesuffix(".mp3")
        prog = programmes.get(ebm_id) if is_ebm_id(ebm_id) else None
        if prog is None:
            return json_error(
                404,
                "not_found",
                "直播音频不存在或消息已结束；请改用消息记录中的 /audio/<摘要>.mp3 地址。",
                ebm_id=ebm_id,
            )
        resp = web.StreamResponse(headers={"Content-Type": "audio/mpeg", "Cache-Control": "no-store"})
        full = prog.full_bytes()
        if full is not None:
            resp.content_length = len(full)
        else:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp
        try:
            async for chunk in prog.stream():
                await resp.write(chunk)
            await resp.write_eof()
        except ConnectionError:  # the terminal hung up (preempted, stopped, rebooted): nothing to do
            log.debug("live audio %s: client %s went away", ebm_id, request.remote)
        return resp

    return get_live_audio

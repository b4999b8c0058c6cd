"""``POST /api/audio``: an operator uploads a recording (上传录音) to broadcast instead of synthesised speech.

Thin: reads one multipart file field (``file``) with a size cap while streaming, hands the bytes to
``broadcast.audio.upload.validate_upload`` (which really decodes them, checks and normalises them and
stores them in the audio cache), and answers with the stored file's digest, duration and sample rate.
The digest then goes into a message's ``audio_digest`` field. The cache and the encoder options are
given at registration (``add_audio_routes``).

Must never: trust the file name, extension or declared content type, hold more than the limit + 1 byte of
an upload in memory, or decide anything about broadcasting.
"""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from broadcast.audio.cache import AudioCache
from broadcast.audio.encode_options import EncodeOptions
from broadcast.audio.upload import UploadProblem, UploadRejected, validate_upload
from broadcast.jsonhttp import json_error, json_response

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_DURATION_S", "FILE_FIELD", "add_audio_routes"]

FILE_FIELD = "file"
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_DURATION_S = 600.0
_READ_CHUNK = 64 * 1024


async def _read_file_field(request: web.Request, max_bytes: int) -> tuple[str, bytes] | web.Response:
    if not request.content_type.startswith("multipart/"):
        return json_error(
            400, "not_multipart", f"请以 multipart/form-data 上传，录音放在表单字段 {FILE_FIELD} 中"
        )
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or part.name != FILE_FIELD:
                continue
            buf = bytearray()
            while chunk := await part.read_chunk(_READ_CHUNK):
                buf += chunk
                if len(buf) > max_bytes:
                    return json_error(
                        413,
                        "too_big",
                        f"文件超过上限 {max_bytes / 1048576:.1f} MB，请压缩或剪短后重新上传",
                        filename=unquote(part.filename or ""),
                    )
            # aiohttp's client percent-encodes non-ASCII names; browsers send them raw (unquote is a no-op)
            return unquote(part.filename or "upload"), bytes(buf)
    except ValueError as exc:  # malformed multipart body
        return json_error(400, "bad_multipart", f"表单格式错误（{exc}），请重新上传")
    return json_error(400, "missing_file", f"没有找到录音文件，请放在表单字段 {FILE_FIELD} 中上传")


def add_audio_routes(
    app: web.Application,
    *,
    cache: AudioCache,
    options: EncodeOptions,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_duration_s: float = DEFAULT_MAX_DURATION_S,
) -> None:
    """Add ``POST /api/audio``: recordings are normalised with ``options`` and stored in ``cache``.
    Answers 201 with ``{digest, format, duration_s, sample_rate, channels, codec, filename, url}``; 422
    with ``{error: <UploadProblem>, message: <Chinese>, filename}`` when the file is not usable audio;
    413 when too big; 400 when no file was sent."""

    async def post_audio(request: web.Request) -> web.Response:
        got = await _read_file_field(request, max_bytes)
        if isinstance(got, web.Response):
            return got
        filename, data = got
        try:
            ok = await validate_upload(
                data,
                filename,
                max_bytes=max_bytes,
                max_duration_s=max_duration_s,
                cache=cache,
                options=options,
            )
        except UploadRejected as exc:
            status = 413 if exc.problem is UploadProblem.TOO_BIG else 422
            return json_error(status, str(exc.problem), exc.message_zh, filename=exc.filename)
        assert ok.ref is not None  # a cache was given, so the recording was stored
        return json_response(
            {
                "digest": ok.ref.digest,
                "format": ok.ref.format,
                "duration_s": ok.duration_s,
                "sample_rate": ok.sample_rate,
                "channels": ok.channels,
                "codec": ok.codec,
                "filename": ok.filename,
                "url": f"/audio/{ok.ref.digest}.{ok.ref.format}",
            },
            status=201,
        )

    app.router.add_post("/api/audio", post_audio)

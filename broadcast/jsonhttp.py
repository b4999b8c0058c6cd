"""JSON over HTTP for every route of the product: responses with Chinese left readable (no \\u
escapes) and the one shape of an error, ``{"error": <kind>, "message": <what to do, in Chinese>}``.

In the kernel because the security, interconnect and web routes all answer this way. Never decides
a status: callers say which.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from aiohttp import web

_dumps = partial(json.dumps, ensure_ascii=False)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def json_error(status: int, error: str, message: str, **extra: Any) -> web.Response:
    return json_response({"error": error, "message": message, **extra}, status=status)

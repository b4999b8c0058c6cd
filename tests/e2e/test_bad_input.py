"""Bad input at the intake: each refused with a clear JSON error, nothing broadcast, service unaffected."""

from __future__ import annotations

import uuid

from broadcast.store.broadcasts import count_broadcasts
from tests.e2e.capdoc import make_cap
from tests.e2e.conftest import County
from tests.helpers.poll import wait_until

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol4;</identifier></alert>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""


async def test_each_bad_document_refused_and_nothing_broadcast(county: County) -> None:
    good = make_cap(f"53018141600000_{uuid.uuid4().hex[:12]}")
    cases = {
        "malformed": (b"<alert><identifier>x</alert", 400),
        "billion_laughs": (BILLION_LAUGHS, 400),
        "xxe": (XXE, 400),
        "unknown_area": (make_cap(f"x_{uuid.uuid4().hex}", "530999000000"), 422),
        "oversized": (good + b"<!--" + b"x" * 400_000 + b"-->", 413),
    }
    for name, (doc, expected) in cases.items():
        status, body = await county.post_cap(doc)
        assert status == expected, (name, status, body)
        assert body["error"] and body["message"], (name, body)
        # The message is for a person: Chinese and specific.
        assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), (name, body)
    assert "root:" not in str(body)
    assert await count_broadcasts(county.controller.engine) == 0
    unknown = (await county.post_cap(make_cap(f"y_{uuid.uuid4().hex}", "530999000000")))[1]
    assert "530999000000" in unknown["message"]
    # The service is unaffected: a good document still goes out.
    status, body = await county.post_cap(good)
    assert status == 202, body
    b = await wait_until(
        lambda: county.broadcast(body["broadcast_id"]), lambda b: b["state"] == "completed", within=60
    )
    assert b["coverage"]["rate"] == 1.0

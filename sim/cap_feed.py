"""A simulated meteorological CAP feed (模拟气象预警 CAP 信息源) on 127.0.0.1, for tests, benchmark and demo.

Owns: CMA-style CAP documents for Anning (`cma_document`: an en-US and a zh-CN info block, CPEAS geocodes
530181xxxxxx, identifiers ``53018141600000_<yyyymmddHHMMSS>``), a scenario timeline (`Publication`s,
`rainstorm_scenario`), and an aiohttp server publishing what the injected clock says has been published
by now: an Atom index (``/cap/index.atom``, newest first, readable by `feeds_formats.parse_atom`) and each
document at its own URL (``/cap/<identifier>.xml``). Expired documents drop out of the index (their URL
keeps answering). Conditional GET: ETag and Last-Modified on every 200, 304 for a matching
If-None-Match (or, without it, an If-Modified-Since not older than the last change).

Levers (pyatv style): `go_down()` / `come_up()` (every request answers 503), `slow(seconds)` (delay every
answer), `serve_garbage(n, target)` (the next n index or document answers are not XML),
`serve_duplicate(on)` (every entry appears twice in the index).

Never reads the wall clock for the scenario (the clock is injected), never listens beyond 127.0.0.1.
Test, benchmark and demo use only; the product never imports this module.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from enum import StrEnum
from typing import Any, Literal
from xml.sax.saxutils import escape

from aiohttp import web

from broadcast.clock import BEIJING, Clock

NS_CAP_12 = "urn:oasis:names:tc:emergency:cap:1.2"
NS_ATOM = "http://www.w3.org/2005/Atom"
OFFICE_CODE = "53018141600000"  # Anning meteorological observatory (illustrative 14-digit office code)
SENDER = "Anning_Meteorological_Observatory"
SENDER_NAME_ZH = "安宁市气象台"
SENDER_NAME_EN = "Anning Meteorological Observatory"
COUNTY_CODE = "530181000000"
INDEX_PATH = "/cap/index.atom"
CAP_MIME = "application/cap+xml"


class Colour(StrEnum):
    """Warning colour (预警颜色) with its CAP severity and grade."""

    RED = "红色"
    ORANGE = "橙色"
    YELLOW = "黄色"
    BLUE = "蓝色"

    @property
    def english(self) -> str:
        return {"红色": "Red", "橙色": "Orange", "黄色": "Yellow", "蓝色": "Blue"}[self.value]

    @property
    def severity(self) -> str:
        return {"红色": "Extreme", "橙色": "Severe", "黄色": "Moderate", "蓝色": "Minor"}[self.value]

    @property
    def grade(self) -> tuple[str, str, str, str]:
        """(Roman grade, Chinese wording, English grade, English wording)."""
        return {
            "红色": ("Ⅰ", "特别严重", "I", "Particularly serious"),
            "橙色": ("Ⅱ", "严重", "II", "Serious"),
            "黄色": ("Ⅲ", "较重", "III", "Relatively serious"),
            "蓝色": ("Ⅳ", "一般", "IV", "General"),
        }[self.value]


EVENTS = {  # Chinese event → (English event, national event code, defence guide)
    "暴雨": (
        "Rainstorm",
        "11B03",
        "防御指南：1.政府及相关部门按照职责做好防暴雨应急工作；2.切断有危险的室外电源，"
        "暂停户外作业；3.处于危险地带的单位应当停课、停业，采取专门措施保护已到校学生、幼儿园儿童和其他上班人员的安全；"
        "4.做好城市、农田的排涝，注意防范可能引发的山洪、滑坡、泥石流等灾害。",
    ),
    "雷电": (
        "Thunder and Lightning",
        "11B14",
        "防御指南：1.政府及相关部门按照职责做好防雷工作；2.密切关注天气，尽量避免户外活动。",
    ),
    "大雾": (
        "Fog",
        "11B17",
        "防御指南：1.有关部门和单位按照职责做好防雾准备工作；2.机场、高速公路、轮渡码头等单位加强调度指挥；"
        "3.驾驶人员注意雾的变化，小心驾驶；4.户外活动注意安全。",
    ),
    "大风": (
        "Gale",
        "11B06",
        "防御指南：1.做好防风准备；2.关好门窗，加固围板、棚架、广告牌等易被风吹动的搭建物。",
    ),
    "高温": (
        "High Temperature",
        "11B09",
        "防御指南：1.做好防暑降温准备；2.午后尽量减少户外活动；3.对老、弱、病、幼人群提供防暑降温指导。",
    ),
}
STREETS = {  # the 9 streets of Anning (codes illustrative, as in config/anning)
    "530181001000": "连然街道",
    "530181002000": "金方街道",
    "530181003000": "八街街道",
    "530181004000": "县街街道",
    "530181005000": "太平新城街道",
    "530181006000": "草铺街道",
    "530181007000": "温泉街道",
    "530181008000": "青龙街道",
    "530181009000": "禄脿街道",
}


def identifier_at(sent: datetime) -> str:
    """The CMA identifier form: office code, '_', Beijing time yyyymmddHHMMSS."""
    return f"{OFFICE_CODE}_{sent.astimezone(BEIJING):%Y%m%d%H%M%S}"


def _cap_time(t: datetime) -> str:
    return t.astimezone(BEIJING).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Reference:
    identifier: str
    sent: datetime
    sender: str = SENDER

    def text(self) -> str:
        return f"{self.sender},{self.identifier},{_cap_time(self.sent)}"


def cma_document(
    *,
    sent: datetime,
    event_zh: str = "暴雨",
    colour: Colour = Colour.YELLOW,
    msg_type: Literal["Alert", "Update", "Cancel"] = "Alert",
    references: Sequence[Reference] = (),
    expires: datetime | None = None,
    areas: Sequence[tuple[str, str]] = (("安宁市", COUNTY_CODE),),
    polygons: Sequence[Sequence[tuple[float, float]]] = (),
    circles: Sequence[tuple[float, float, float]] = (),
    status: str = "Actual",
    identifier: str | None = None,
    description_zh: str = "",
    extra_zh_paragraphs: int = 0,
    previous: Colour | None = None,
) -> bytes:
    """One CAP 1.2 document the way the CMA feed writes it: en-US info first, then zh-CN."""
    event_en, _code, guide = EVENTS[event_zh]
    ident = identifier or identifier_at(sent)
    expires = expires or sent + timedelta(hours=24)
    roman, grade_zh, grade_en, wording_en = colour.grade
    lifted = msg_type == "Cancel"
    verb_zh, verb_en = (
        ("解除", "lifted")
        if lifted
        else (("变更", "updated") if msg_type == "Update" else ("发布", "issued"))
    )
    local = sent.astimezone(BEIJING)
    headline_zh = f"{SENDER_NAME_ZH}{verb_zh}{event_zh}{colour.value}预警[{roman}级/{grade_zh}]"
    headline_en = f"{SENDER_NAME_EN} {verb_en} {event_en} {colour.english} Warning [{grade_en}/{wording_en}]"
    if msg_type == "Update" and previous is not None and previous is not colour:
        # CMA wording of a change of colour: 将暴雨黄色预警升级为橙色预警 (the last colour named wins)
        change = "升级" if list(Colour).index(colour) < list(Colour).index(previous) else "降级"
        headline_zh = (
            f"{SENDER_NAME_ZH}将{event_zh}{previous.value}预警{change}为{colour.value}预警[{roman}级/{grade_zh}]"
        )
        headline_en = (
            f"{SENDER_NAME_EN} changed {event_en} {previous.english} Warning to {colour.english} Warning "
            f"[{grade_en}/{wording_en}]"
        )
    places = "、".join(desc for desc, _ in areas)
    if not description_zh:
        if lifted:
            description_zh = (
                f"{SENDER_NAME_ZH}{local:%Y年%m月%d日%H时%M分}解除{event_zh}{colour.value}预警信号。"
            )
        else:
            description_zh = (
                f"{SENDER_NAME_ZH}{local:%Y年%m月%d日%H时%M分}{verb_zh}{event_zh}{colour.value}预警信号："
                f"预计未来6小时内{places}将出现{event_zh}天气，请注意防范。"
            )
    description_zh += "".join(
        f"第{i + 1}段补充说明：{places}各有关单位和个人请密切关注天气变化，及时做好各项防范工作。"
        for i in range(extra_zh_paragraphs)
    )
    refs = " ".join(r.text() for r in references)

    def area_xml() -> str:
        shapes = "".join(
            "<polygon>" + " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in ring) + "</polygon>"
            for ring in polygons
        ) + "".join(f"<circle>{lat:.6f},{lon:.6f} {r:g}</circle>" for lat, lon, r in circles)
        out = []
        for i, (desc, code) in enumerate(areas):
            out.append(
                f"<area><areaDesc>{escape(desc)}</areaDesc>{shapes if i == 0 else ''}"
                f"<geocode><valueName>CPEAS Geographic Code</valueName><value>{code}</value></geocode></area>"
            )
        return "".join(out)

    def info(
        language: str, event: str, sender_name: str, headline: str, description: str, instruction: str
    ) -> str:
        instr = f"<instruction>{escape(instruction)}</instruction>" if instruction and not lifted else ""
        return (
            f"<info><language>{language}</language><category>Met</category><event>{escape(event)}</event>"
            "<urgency>Unknown</urgency>"
            f"<severity>{colour.severity}</severity><certainty>Unknown</certainty>"
            f"<effective>{_cap_time(sent)}</effective><expires>{_cap_time(expires)}</expires>"
            f"<senderName>{escape(sender_name)}</senderName><headline>{escape(headline)}</headline>"
            f"<description>{escape(description)}</description>{instr}{area_xml()}</info>"
        )

    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<alert xmlns="{NS_CAP_12}"><identifier>{ident}</identifier><sender>{SENDER}</sender>'
        f"<sent>{_cap_time(sent)}</sent><status>{status}</status><msgType>{msg_type}</msgType>"
        "<scope>Public</scope>"
        + (f"<references>{refs}</references>" if refs else "")
        + info("en-US", event_en, SENDER_NAME_EN, headline_en, f"{headline_en}.", "")
        + info("zh-CN", event_zh, SENDER_NAME_ZH, headline_zh, description_zh, guide)
        + "</alert>\n"
    )
    return body.encode("utf-8")


@dataclass(frozen=True)
class Publication:
    """One document of the scenario: visible from ``at`` until ``expires`` (in the index)."""

    at: datetime
    identifier: str
    title: str
    document: bytes
    expires: datetime | None = None

    def visible(self, now: datetime) -> bool:
        return self.at <= now and (self.expires is None or now < self.expires)


def publication(
    sent: datetime, *, expires: datetime | None = None, identifier: str | None = None, **document: Any
) -> Publication:
    """A `Publication` published at ``sent``; other keywords go to `cma_document`."""
    expires = expires or sent + timedelta(hours=24)
    ident = identifier or identifier_at(sent)
    doc = cma_document(sent=sent, expires=expires, identifier=ident, **document)
    start = doc.index(b"<headline>", doc.index(b"zh-CN")) + len(b"<headline>")
    title = doc[start : doc.index(b"</headline>", start)].decode("utf-8")
    return Publication(sent, ident, title, doc, expires)


def rainstorm_scenario(start: datetime) -> list[Publication]:
    """Yellow rainstorm (t+0), a fog warning that expires (t+5 min, 30 min long), the upgrade to orange
    with references (t+20 min), the lifting 解除 with references (t+60 min), a thunder warning (t+90 min)."""
    yellow = publication(
        sent=start,
        colour=Colour.YELLOW,
        expires=start + timedelta(hours=12),
        areas=(("连然街道", "530181001000"), ("金方街道", "530181002000")),
    )
    fog_at = start + timedelta(minutes=5)
    fog = publication(
        sent=fog_at,
        event_zh="大雾",
        colour=Colour.YELLOW,
        expires=fog_at + timedelta(minutes=30),
        areas=(("草铺街道", "530181006000"),),
    )
    orange_at = start + timedelta(minutes=20)
    orange = publication(
        sent=orange_at,
        colour=Colour.ORANGE,
        msg_type="Update",
        previous=Colour.YELLOW,
        references=(Reference(yellow.identifier, yellow.at),),
        expires=start + timedelta(hours=12),
        areas=(("连然街道", "530181001000"), ("金方街道", "530181002000"), ("温泉街道", "530181007000")),
    )
    lift_at = start + timedelta(minutes=60)
    lifted = publication(
        sent=lift_at,
        colour=Colour.ORANGE,
        msg_type="Cancel",
        references=(Reference(yellow.identifier, yellow.at), Reference(orange.identifier, orange.at)),
        expires=start + timedelta(hours=12),
        areas=(("连然街道", "530181001000"), ("金方街道", "530181002000"), ("温泉街道", "530181007000")),
    )
    thunder_at = start + timedelta(minutes=90)
    thunder = publication(
        sent=thunder_at,
        event_zh="雷电",
        colour=Colour.YELLOW,
        expires=thunder_at + timedelta(hours=3),
        areas=(("安宁市", COUNTY_CODE),),
    )
    return [yellow, fog, orange, lifted, thunder]


GarbageTarget = Literal["index", "document"]


@dataclass
class _Levers:
    down: bool = False
    delay_s: float = 0.0
    garbage: Counter[str] = field(default_factory=Counter)
    duplicate: bool = False


def _http_date(t: datetime) -> str:
    return format_datetime(t.astimezone(UTC).replace(microsecond=0), usegmt=True)


class CapFeedServer:
    """The feed server. ``publications`` may be extended at any time (`publish`)."""

    def __init__(
        self, clock: Clock, publications: Sequence[Publication] = (), *, feed_title: str = ""
    ) -> None:
        self.clock = clock
        self.publications: list[Publication] = list(publications)
        self.feed_title = feed_title or f"{SENDER_NAME_ZH}预警信息"
        self.levers = _Levers()
        self.port = 0
        self.requests: Counter[str] = Counter()  # path → requests
        self.statuses: Counter[int] = Counter()  # HTTP status → answers
        self._runner: web.AppRunner | None = None

    # ---- lifecycle ----

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def index_url(self) -> str:
        return self.base_url + INDEX_PATH

    def document_url(self, identifier: str) -> str:
        return f"{self.base_url}/cap/{identifier}.xml"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get(INDEX_PATH, self._index)
        app.router.add_get("/cap/{identifier}.xml", self._document)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.index_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> CapFeedServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- levers ----

    def go_down(self) -> None:
        self.levers.down = True

    def come_up(self) -> None:
        self.levers.down = False

    def slow(self, seconds: float) -> None:
        """Delay every answer by ``seconds`` (0 restores normal speed)."""
        self.levers.delay_s = max(0.0, seconds)

    def serve_garbage(self, n: int = 1, target: GarbageTarget = "index") -> None:
        """The next ``n`` answers for the index (or for documents) are 200 with bytes that are not XML."""
        self.levers.garbage[target] += n

    def serve_duplicate(self, on: bool = True) -> None:
        """List every entry twice in the index (a feed bug seen in the wild)."""
        self.levers.duplicate = on

    def publish(self, item: Publication) -> None:
        self.publications.append(item)

    # ---- what is visible now ----

    def visible(self) -> list[Publication]:
        """Entries of the index now, newest first."""
        now = self.clock.now()
        return sorted((p for p in self.publications if p.visible(now)), key=lambda p: p.at, reverse=True)

    def last_change(self) -> datetime | None:
        """The last instant the index changed (a publication appeared or expired)."""
        now = self.clock.now()
        moments = [p.at for p in self.publications if p.at <= now]
        moments += [p.expires for p in self.publications if p.expires is not None and p.expires <= now]
        return max(moments, default=None)

    def index_body(self) -> bytes:
        entries = []
        for p in self.visible():
            url = self.document_url(p.identifier)
            entry = (
                f"<entry><id>{escape(url)}</id><title>{escape(p.title)}</title>"
                f"<updated>{_cap_time(p.at)}</updated><author><name>{SENDER_NAME_ZH}</name></author>"
                f'<link rel="alternate" type="{CAP_MIME}" href="{escape(url)}"/></entry>'
            )
            entries.append(entry + entry if self.levers.duplicate else entry)
        updated = self.last_change() or self.clock.now()
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<feed xmlns="{NS_ATOM}"><id>{escape(self.index_url)}</id>'
            f"<title>{escape(self.feed_title)}</title>"
            f"<updated>{_cap_time(updated)}</updated>"
            f'<link rel="self" href="{escape(self.index_url)}"/>' + "".join(entries) + "</feed>\n"
        ).encode("utf-8")

    # ---- handlers ----

    async def _gate(self, request: web.Request, target: GarbageTarget) -> web.Response | None:
        self.requests[request.path] += 1
        if self.levers.delay_s:
            await asyncio.sleep(self.levers.delay_s)
        if self.levers.down:
            return web.Response(status=503, text="服务暂不可用", headers={"Retry-After": "60"})
        if self.levers.garbage[target] > 0:
            self.levers.garbage[target] -= 1
            return web.Response(
                body=b"\x00\x89garbage<<<not xml" * 8, content_type="application/octet-stream"
            )
        return None

    def _conditional(
        self, request: web.Request, body: bytes, modified: datetime | None, ctype: str
    ) -> web.Response:
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        headers = {"ETag": etag}
        if modified is not None:
            headers["Last-Modified"] = _http_date(modified)
        inm = request.headers.get("If-None-Match")
        ims = request.headers.get("If-Modified-Since")
        if inm is not None:
            if etag in (t.strip() for t in inm.split(",")) or inm.strip() == "*":
                return web.Response(status=304, headers=headers)
        elif ims is not None and modified is not None:
            try:
                since = parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                since = None
            if since is not None and since.tzinfo is not None and modified.replace(microsecond=0) <= since:
                return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=ctype, charset="utf-8", headers=headers)

    def _answer(self, resp: web.Response) -> web.Response:
        self.statuses[resp.status] += 1
        return resp

    async def _index(self, request: web.Request) -> web.Response:
        gated = await self._gate(request, "index")
        if gated is not None:
            return self._answer(gated)
        resp = self._conditional(request, self.index_body(), self.last_change(), "application/atom+xml")
        return self._answer(resp)

    async def _document(self, request: web.Request) -> web.Response:
        gated = await self._gate(request, "document")
        if gated is not None:
            return self._answer(gated)
        now = self.clock.now()
        ident = request.match_info["identifier"]
        found = next((p for p in self.publications if p.identifier == ident and p.at <= now), None)
        if found is None:
            return self._answer(web.Response(status=404, text=f"no such warning: {ident}"))
        return self._answer(self._conditional(request, found.document, found.at, CAP_MIME))

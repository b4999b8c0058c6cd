"""A simulated province platform (省级应急广播平台) speaking the real EBD interface over HTTP on 127.0.0.1.

It has its own SM2 key and EBRID, sends the county EBMs (actual, drill, cancel), EBMStateRequest,
OMDRequest and heartbeats, receives the county's POSTs (heartbeats, reports, business answers), verifies the
county's signatures and checks every answer against the rules of eb-protocols §2; each broken rule is
recorded in `violations`. Levers: `go_offline()` / `go_online()` (answer 503, no EBDResponse),
`reject_next(n, code)` (answer EBDResponse with a refusal code).

Test and demo use only; the product never imports this module.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
from aiohttp import web

from broadcast.clock import BEIJING, Clock, SystemClock
from broadcast.interconnect.ebd.ids import EbdIdAllocator, parse_ebd_id
from broadcast.interconnect.ebd.model import (
    EBD,
    EBM,
    Body,
    ConnectionCheck,
    EbdError,
    EBDHeader,
    EBDResponse,
    EBDType,
    EBMStateRequest,
    MsgBasicInfo,
    MsgContent,
    OMDRequest,
    OMDType,
    RelatedInfo,
    ReportParams,
    ResultCode,
    RptType,
)
from broadcast.interconnect.ebd.package import pack_ebdt, tar_name, unpack_ebdt
from broadcast.interconnect.ebd.signing import PublicKey, Signer, Verifier, VerifyResult, generate_private_key
from broadcast.interconnect.ebd.xml_build import build_ebd
from broadcast.model import MsgType

PROVINCE = "25300000000000103010101"  # Yunnan province platform (level 2, area 530000)
PROVINCE_CERT_SN = "000000000201"


@dataclass(frozen=True)
class Received:
    ebd: EBD
    signature: VerifyResult
    at: datetime


@dataclass
class Exchange:
    """One packet we sent and the county's synchronous answer."""

    request: EBD
    status: int
    response: EBD | None = None
    content_type: str = ""
    disposition: str = ""

    @property
    def result_code(self) -> ResultCode | None:
        body = self.response.body if self.response is not None else None
        return body.result_code if isinstance(body, EBDResponse) else None


@dataclass
class _Levers:
    offline: bool = False
    reject: list[ResultCode] = field(default_factory=list)


class ProvincePlatform:
    def __init__(
        self,
        county_ebrid: str,
        county_key: PublicKey,
        county_cert_sn: str,
        *,
        ebrid: str = PROVINCE,
        county_url: str | None = None,
        clock: Clock | None = None,
        path: str = "/platReq",
    ) -> None:
        self.ebrid = ebrid
        self.county_ebrid = county_ebrid
        self.county_url = county_url
        self.clock = clock or SystemClock()
        self.key = generate_private_key()
        self.cert_sn = PROVINCE_CERT_SN
        self.signer = Signer(self.key, self.cert_sn, clock=self.clock)
        self._county = Verifier({county_cert_sn: county_key})
        self._ids = EbdIdAllocator(ebrid, self.clock)
        self._ebm_seq = itertools.count(1)
        self._path = path
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0
        self.levers = _Levers()
        self.received: list[Received] = []
        self.accepted: Counter[str] = Counter()  # EBDID → how often we answered it with ResultCode 1
        self.violations: list[str] = []
        self.sent: dict[str, EBD] = {}
        self.heartbeats = 0

    # ---- lifecycle ----

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self._path}"

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(self._path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession()
        return self.url

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- levers ----

    def go_offline(self) -> None:
        self.levers.offline = True

    def go_online(self) -> None:
        self.levers.offline = False

    def reject_next(self, n: int = 1, code: ResultCode = ResultCode.OTHER_ERROR) -> None:
        self.levers.reject.extend([code] * n)

    # ---- what the county sent us ----

    def of_type(self, ebd_type: EBDType) -> list[EBD]:
        return [r.ebd for r in self.received if r.ebd.ebd_type is ebd_type]

    def violation(self, text: str) -> None:
        self.violations.append(text)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.levers.offline:
            return web.Response(status=503, text="offline")
        data = b""
        if request.content_type.startswith("multipart/"):
            post = await request.post()
            part = post.get("file")
            if isinstance(part, web.FileField):
                data = part.file.read()
                if part.filename and not part.filename.startswith("EBDT_"):
                    self.violation(f"multipart file name {part.filename!r} is not EBDT_<EBDID>.tar")
            else:
                self.violation("POST without a multipart field named 'file'")
        else:
            self.violation(f"POST with content type {request.content_type}, expected multipart/form-data")
            data = await request.read()
        try:
            pkg = unpack_ebdt(data)
        except EbdError as exc:
            self.violation(f"county sent an unreadable package: {exc}")
            return self._answer(exc.result_code, "解析失败", exc.ebd_id)
        ebd = pkg.ebd
        verified = self._county.verify(pkg.ebdb, pkg.signature_xml, ebd_id=ebd.ebd_id)
        self.received.append(Received(ebd, verified, self.clock.now()))
        self._check(ebd, verified)
        if verified is not VerifyResult.OK:
            return self._answer(ResultCode.SIGNATURE_FAILED, "签名验证失败", ebd.ebd_id)
        if self.levers.reject:
            return self._answer(self.levers.reject.pop(0), "模拟拒收", ebd.ebd_id)
        if isinstance(ebd.body, ConnectionCheck):
            self.heartbeats += 1
        else:
            self.accepted[ebd.ebd_id] += 1
        return self._answer(ResultCode.OK, "接收成功", ebd.ebd_id)

    def _check(self, ebd: EBD, verified: VerifyResult) -> None:
        h = ebd.header
        if verified is not VerifyResult.OK:
            self.violation(f"{ebd.ebd_type} {h.ebd_id}: county signature {verified}")
        if h.dest_ebrid != self.ebrid:
            self.violation(f"{ebd.ebd_type} {h.ebd_id}: DEST {h.dest_ebrid} is not the province {self.ebrid}")
        if h.src_ebrid != self.county_ebrid:
            self.violation(f"{ebd.ebd_type} {h.ebd_id}: SRC {h.src_ebrid} is not the county")
        try:
            info = parse_ebd_id(h.ebd_id)
            if info.legacy or info.sender != self.county_ebrid:
                self.violation(f"EBDID {h.ebd_id} does not carry the county EBRID")
            if info.is_heartbeat != isinstance(ebd.body, ConnectionCheck):
                self.violation(f"EBDID {h.ebd_id} kind does not match {ebd.ebd_type}")
        except ValueError as exc:
            self.violation(str(exc))
        if h.related_ebd_id is not None:
            asked = self.sent.get(h.related_ebd_id)
            if asked is None:
                self.violation(
                    f"{ebd.ebd_type} {h.ebd_id} relates to {h.related_ebd_id}, which we never sent"
                )
            elif isinstance(asked.body, OMDRequest) and asked.body.omd_type.value != ebd.ebd_type.value:
                self.violation(f"OMDRequest {asked.body.omd_type} answered with {ebd.ebd_type}")
            elif (
                isinstance(asked.body, EBMStateRequest | EBM)
                and ebd.ebd_type is not EBDType.EBM_STATE_RESPONSE
            ):
                self.violation(f"{asked.ebd_type} answered with {ebd.ebd_type}")

    def _answer(self, code: ResultCode, desc: str, related: str | None) -> web.Response:
        ebd, tar = self._pack(EBDResponse(code, desc), related=related)
        return web.Response(
            body=tar,
            content_type="application/x-tar",
            headers={"Content-Disposition": f'attachment; filename="{tar_name(ebd.ebd_id)}"'},
        )

    # ---- sending ----

    def _pack(
        self, body: Body, *, related: str | None = None, sign: bool = True, tamper: bool = False
    ) -> tuple[EBD, bytes]:
        ebd_id = self._ids.heartbeat_id() if isinstance(body, ConnectionCheck) else self._ids.next_id()
        header = EBDHeader(
            ebd_id, self.ebrid, self.county_ebrid, self.clock.now(), src_url=self.url, related_ebd_id=related
        )
        ebd = EBD(header, body)
        ebdb = build_ebd(ebd)
        signature = self.signer.sign_xml(ebdb, ebd_id) if sign else None
        if tamper:
            ebdb = ebdb.replace(b"<MsgTitle>", b"<MsgTitle>X", 1) if b"<MsgTitle>" in ebdb else ebdb + b" "
        return ebd, pack_ebdt(ebd_id, ebdb, signature)

    def make_ebm(
        self,
        msg_type: MsgType = MsgType.ACTUAL,
        *,
        area_codes: tuple[str, ...] = ("530181000000",),
        related_ebm_id: str | None = None,
        title: str = "暴雨红色预警",
        text: str = "省气象台发布暴雨红色预警信号，请注意防范。",
        event_type: str = "11B03",
        severity: int = 1,
        minutes: int = 30,
    ) -> EBM:
        now = self.clock.now()
        day = now.astimezone(BEIJING).strftime("%Y%m%d")
        ebm_id = f"{self.ebrid}{day}{next(self._ebm_seq):04d}"
        return EBM(
            ebm_id=ebm_id,
            basic=MsgBasicInfo(
                msg_type,
                "云南省应急广播平台",
                self.ebrid,
                now,
                event_type,
                severity,
                now,
                now + timedelta(minutes=minutes),
            ),
            content=MsgContent("zho", title, text, area_codes),
            related=RelatedInfo(ebm_id=related_ebm_id) if related_ebm_id else None,
        )

    def prepare(self, body: Body, *, sign: bool = True, tamper: bool = False) -> tuple[EBD, bytes]:
        """Build, sign and pack one packet to the county and note it as sent (so its answer is checked);
        `send_raw` then sends the bytes, as often and in whatever form a test likes."""
        ebd, tar = self._pack(body, sign=sign, tamper=tamper)
        self.sent[ebd.ebd_id] = ebd
        return ebd, tar

    async def send(self, body: Body, *, sign: bool = True, tamper: bool = False) -> Exchange:
        ebd, tar = self.prepare(body, sign=sign, tamper=tamper)
        return await self.send_raw(tar, ebd)

    async def send_ebm(self, msg_type: MsgType = MsgType.ACTUAL, **kw: object) -> tuple[EBM, Exchange]:
        ebm = self.make_ebm(msg_type, **kw)  # type: ignore[arg-type]
        return ebm, await self.send(ebm)

    async def send_state_request(self, ebm_id: str) -> Exchange:
        return await self.send(EBMStateRequest(ebm_id))

    async def send_omd(
        self,
        omd_type: OMDType,
        rpt_type: RptType = RptType.FULL,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Exchange:
        return await self.send(OMDRequest(omd_type, ReportParams(start, end, rpt_type)))

    async def send_heartbeat(self, *, sign: bool = True) -> Exchange:
        return await self.send(ConnectionCheck(self.clock.now()), sign=sign)

    async def send_raw(self, tar: bytes, request: EBD, *, multipart: bool = True) -> Exchange:
        assert self._session is not None and self.county_url is not None, "start() and set county_url first"
        if multipart:
            form = aiohttp.FormData()
            form.add_field("file", tar, filename=tar_name(request.ebd_id), content_type="application/x-tar")
            ctx = self._session.post(self.county_url, data=form)
        else:
            ctx = self._session.post(self.county_url, data=tar, headers={"Content-Type": "application/x-tar"})
        async with ctx as resp:
            body = await resp.read()
            ex = Exchange(
                request,
                resp.status,
                content_type=resp.content_type,
                disposition=resp.headers.get("Content-Disposition", ""),
            )
        self._check_answer(ex, body)
        return ex

    def _check_answer(self, ex: Exchange, body: bytes) -> None:
        rid = ex.request.ebd_id
        if ex.status != 200:
            self.violation(f"answer to {rid}: HTTP {ex.status}")
            return
        if ex.content_type != "application/x-tar":
            self.violation(f"answer to {rid}: Content-Type {ex.content_type}")
        try:
            pkg = unpack_ebdt(body)
        except EbdError as exc:
            self.violation(f"answer to {rid} is not an EBD package: {exc}")
            return
        ex.response = pkg.ebd
        h = pkg.ebd.header
        if not isinstance(pkg.ebd.body, EBDResponse):
            self.violation(f"answer to {rid} is {pkg.ebd.ebd_type}, not EBDResponse")
        if f'filename="{tar_name(h.ebd_id)}"' not in ex.disposition:
            self.violation(
                f"answer to {rid}: Content-Disposition {ex.disposition!r} does not name {tar_name(h.ebd_id)}"
            )
        if h.related_ebd_id != rid:
            self.violation(f"answer to {rid} relates to {h.related_ebd_id}")
        if h.dest_ebrid != self.ebrid:
            self.violation(f"answer to {rid}: DEST {h.dest_ebrid}")
        verified = self._county.verify(pkg.ebdb, pkg.signature_xml, ebd_id=h.ebd_id)
        if verified is not VerifyResult.OK:
            self.violation(f"answer to {rid}: county signature {verified}")

    async def wait_for(self, ebd_type: EBDType, count: int = 1, timeout_s: float = 5.0) -> list[EBD]:
        """Poll until `count` packets of this type arrived (tests drive the county's outbox meanwhile)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(found := self.of_type(ebd_type)) < count:
            if loop.time() > deadline:
                raise TimeoutError(f"only {len(found)} {ebd_type} packets arrived, expected {count}")
            await asyncio.sleep(0.01)
        return found

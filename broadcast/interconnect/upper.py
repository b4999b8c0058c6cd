"""Receiving from upper platforms (上级平台接入): the endpoint logic behind POST /ebd.

Flow of one received packet: unpack → verify the signature (signing.signature_result_code: EBM and business
packets must be signed; an unsigned ConnectionCheck is tolerated) → check DEST → answer a duplicate EBDID
with the stored answer → act (EBM: submit / cancel through the `CountyFacade`; EBMStateRequest,
OMDRequest: queue the business answer in the outbox) → answer synchronously with a signed EBDResponse
(ResultCode 0–5). Business answers go out asynchronously through the outbox to the sender's SRC/URL or the
configured peer URL. An EBM's RelatedInfo names the upper platform's EBMID; a Cancel, and an Update of a
message we already took, are handed to the core with the county's id of that broadcast instead (the
inbox keeps the map), so the county's policy recognises the original.

The core boundary (`CountyFacade`, `UpperRefusal`, `UpperPeer`) and the upward packet maker (`PacketMaker`,
`UpwardQueue`) live in `broadcast.interconnect.upper_boundary`.

Owns the `interconnect_inbox` table (accepted packets, the upper ↔ county EBM id map, stored answers; the
composition root's `prepare_schema` creates it). Must never talk HTTP itself (`routes` does), create its
table, edit the core's state except through the facade, or accept an EBM whose signature did not verify.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Column, Integer, LargeBinary, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.interconnect.convert import ConvertError, brd_item, ebm_to_draft, state_response
from broadcast.interconnect.ebd.ids import parse_ebd_id
from broadcast.interconnect.ebd.model import (
    EBD,
    EBM,
    Body,
    ConnectionCheck,
    EbdError,
    EBDHeader,
    EBDResponse,
    EBDType,
    EBMBrdLog,
    EBMStateRequest,
    OMDRequest,
    OMDType,
    ResultCode,
)
from broadcast.interconnect.ebd.package import unpack_ebdt
from broadcast.interconnect.ebd.signing import Verifier, signature_result_code
from broadcast.interconnect.outbox import Outbox
from broadcast.interconnect.resources import brd_log_window, resource_report
from broadcast.interconnect.upper_boundary import (
    CountyFacade,
    UpperPeer,
    UpperRefusal,
    UpwardQueue,
)
from broadcast.model import MsgType
from broadcast.store.tables import UtcDateTime, metadata

log = logging.getLogger(__name__)


# ---- the inbox ----------------------------------------------------------------------------------

inbox_table = Table(
    "interconnect_inbox",
    metadata,
    Column("ebd_id", String(41), primary_key=True),
    Column("src_ebrid", String(23), nullable=False),
    Column("ebd_type", String(24), nullable=False),
    Column("upper_ebm_id", String(35), nullable=True, index=True),
    Column("local_ebm_id", String(35), nullable=True, index=True),
    Column("reply_url", Text, nullable=False, default=""),
    Column("result_code", Integer, nullable=False),
    Column("response_ebd_id", String(41), nullable=False),
    Column("response", LargeBinary, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class UpperOrigin:
    """Where a county broadcast came from when an upper platform sent it."""

    request_ebd_id: str
    src_ebrid: str
    upper_ebm_id: str
    reply_url: str


async def upper_origin(engine: AsyncEngine, local_ebm_id: str) -> UpperOrigin | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(inbox_table)
                .where(inbox_table.c.local_ebm_id == local_ebm_id)
                .where(inbox_table.c.ebd_type == EBDType.EBM.value)
                .order_by(inbox_table.c.received_at)
                .limit(1)
            )
        ).first()
    if row is None:
        return None
    m = row._mapping
    return UpperOrigin(m["ebd_id"], m["src_ebrid"], m["upper_ebm_id"], m["reply_url"])


async def local_for_upper(engine: AsyncEngine, upper_ebm_id: str) -> str | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(inbox_table.c.local_ebm_id)
                .where(inbox_table.c.upper_ebm_id == upper_ebm_id)
                .where(inbox_table.c.local_ebm_id.is_not(None))
                .limit(1)
            )
        ).first()
    return None if row is None else str(row[0])


async def last_issued_serial(engine: AsyncEngine, outbox: Outbox, sender_ebrid: str) -> str | None:
    """The newest EBDID serial we issued (queued in the outbox, or answered synchronously), to restart
    the allocator without reusing one."""
    prefix = f"10{sender_ebrid}"
    ids = await outbox.issued_ids(prefix)
    async with engine.connect() as conn:
        ids += [
            r[0]
            for r in await conn.execute(
                select(inbox_table.c.response_ebd_id).where(inbox_table.c.response_ebd_id.like(prefix + "%"))
            )
        ]
    serials = [i[-16:] for i in ids if len(i) == len(prefix) + 16]
    return max(serials) if serials else None


# ---- the receiver -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """The synchronous answer: a signed EBDResponse tar."""

    tar: bytes
    ebd_id: str
    result_code: ResultCode
    result_desc: str
    request_ebd_id: str | None
    duplicate: bool = False


@dataclass(frozen=True)
class _Outcome:
    code: ResultCode
    desc: str
    upper_ebm_id: str | None = None
    local_ebm_id: str | None = None


_OK_DESC = "已接收并校验通过"


class UpperReceiver:
    def __init__(
        self,
        facade: CountyFacade,
        upward: UpwardQueue,
        verifier: Verifier,
        engine: AsyncEngine,
        clock: Clock,
        peers: Sequence[UpperPeer] = (),
        *,
        accept_dest: frozenset[str] | None = None,
        success_ratio: float = 1.0,
    ) -> None:
        self._facade = facade
        self._upward = upward
        self._maker = upward.maker
        self._verifier = verifier
        self._engine = engine
        self._clock = clock
        self._peers = {p.ebrid: p for p in peers}
        self._accept_dest = accept_dest or frozenset({facade.platform_code})
        self._success_ratio = success_ratio
        self._lock = asyncio.Lock()

    # ---- entry point ----

    async def receive(self, data: bytes) -> Reply:
        try:
            pkg = unpack_ebdt(data)
        except EbdError as exc:
            log.warning("upper packet refused (ResultCode %d): %s", int(exc.result_code), exc)
            return self._reply(exc.result_code, exc.result_desc, exc.ebd_id, self._guess_sender(exc.ebd_id))
        ebd = pkg.ebd
        h = ebd.header
        verified = self._verifier.verify(pkg.ebdb, pkg.signature_xml, ebd_id=h.ebd_id)
        if signature_result_code(ebd.ebd_type, verified) is not ResultCode.OK:
            log.warning(
                "upper packet %s (%s from %s) refused: signature %s",
                h.ebd_id,
                ebd.ebd_type,
                h.src_ebrid,
                verified,
            )
            desc = f"签名验证失败（{verified.value}），请使用本平台信任的证书对数据包签名后重发"
            return self._reply(ResultCode.SIGNATURE_FAILED, desc, h.ebd_id, h.src_ebrid)
        if h.dest_ebrid not in self._accept_dest:
            desc = f"DEST {h.dest_ebrid} 不是本平台（{self._facade.platform_code}），请核对目标资源编码"
            return self._reply(ResultCode.OTHER_ERROR, desc, h.ebd_id, h.src_ebrid)
        if isinstance(ebd.body, ConnectionCheck):
            return self._reply(ResultCode.OK, _OK_DESC, h.ebd_id, h.src_ebrid)
        async with self._lock:
            stored = await self._stored(h.ebd_id)
            if stored is not None:
                return stored
            try:
                outcome = await self._act(ebd)
            except Exception:
                log.exception("upper packet %s (%s) could not be processed", h.ebd_id, ebd.ebd_type)
                return self._reply(
                    ResultCode.OTHER_ERROR,
                    "本平台处理出错，请稍后重发或联系县级平台值班人员",
                    h.ebd_id,
                    h.src_ebrid,
                )
            reply = self._reply(outcome.code, outcome.desc, h.ebd_id, h.src_ebrid)
            if outcome.code in (ResultCode.OK, ResultCode.RECEIVED):
                await self._record(ebd, outcome, reply)
            return reply

    def _guess_sender(self, ebd_id: str | None) -> str:
        if ebd_id:
            try:
                return parse_ebd_id(ebd_id).sender
            except ValueError:
                pass
        return next(iter(self._peers), "0" * 23)

    def _reply(self, code: ResultCode, desc: str, request_id: str | None, dest: str) -> Reply:
        out = self._maker.make(EBDResponse(code, desc), dest, related=request_id)
        return Reply(out.tar, out.ebd_id, code, desc, request_id)

    def reply_url(self, header: EBDHeader) -> str | None:
        if header.src_url:
            return header.src_url
        peer = self._peers.get(header.src_ebrid)
        return peer.url if peer is not None else None

    # ---- persistence ----

    async def _stored(self, ebd_id: str) -> Reply | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(inbox_table).where(inbox_table.c.ebd_id == ebd_id))).first()
        if row is None:
            return None
        m = row._mapping
        log.info("upper packet %s is a duplicate; answering as before", ebd_id)
        return Reply(
            m["response"], m["response_ebd_id"], ResultCode(m["result_code"]), "", ebd_id, duplicate=True
        )

    async def _record(self, ebd: EBD, outcome: _Outcome, reply: Reply) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(inbox_table).values(
                        ebd_id=ebd.ebd_id,
                        src_ebrid=ebd.header.src_ebrid,
                        ebd_type=ebd.ebd_type.value,
                        upper_ebm_id=outcome.upper_ebm_id,
                        local_ebm_id=outcome.local_ebm_id,
                        reply_url=self.reply_url(ebd.header) or "",
                        result_code=int(reply.result_code),
                        response_ebd_id=reply.ebd_id,
                        response=reply.tar,
                        received_at=self._clock.now(),
                    )
                )
        except IntegrityError:
            log.warning("upper packet %s recorded twice", ebd.ebd_id)

    # ---- business ----

    async def _act(self, ebd: EBD) -> _Outcome:
        body = ebd.body
        if isinstance(body, EBM):
            return await self._ebm(ebd, body)
        if isinstance(body, EBMStateRequest):
            return await self._state_request(ebd, body)
        if isinstance(body, OMDRequest):
            return await self._omd(ebd, body)
        # Receipts and reports from above need nothing from us: received, not processed.
        return _Outcome(ResultCode.RECEIVED, "已接收")

    async def _ebm(self, ebd: EBD, ebm: EBM) -> _Outcome:
        try:
            draft = ebm_to_draft(ebm, src_ebrid=ebd.header.src_ebrid)
        except ConvertError as exc:
            log.warning("EBM %s from %s unusable: %s", ebm.ebm_id, ebd.header.src_ebrid, exc.message)
            return _Outcome(exc.result_code, f"应急广播消息内容无效：{exc.message}，请更正后重发")
        known = await local_for_upper(self._engine, ebm.ebm_id)
        if known is not None and draft.msg_type is not MsgType.CANCEL:
            return _Outcome(ResultCode.OK, _OK_DESC + "（重复消息，已在播发队列中）", ebm.ebm_id, known)
        if draft.msg_type is MsgType.CANCEL:
            target = draft.related_ebm_id or ""
            local = await local_for_upper(self._engine, target) or target
            if not await self._facade.cancel_by_ebm(local):
                return _Outcome(
                    ResultCode.OTHER_ERROR, f"未找到要取消的消息 EBMID {target}，请核对 RelatedInfo"
                )
            log.info("EBM %s from %s cancelled broadcast %s", ebm.ebm_id, ebd.header.src_ebrid, local)
            return _Outcome(ResultCode.OK, _OK_DESC + "（已取消播发）", ebm.ebm_id, None)
        if draft.related_ebm_id:  # an Update: name the original by the county's id, as the policy knows it
            original = await local_for_upper(self._engine, draft.related_ebm_id)
            if original is not None:
                draft = replace(draft, related_ebm_id=original)
        try:
            _, local_id = await self._facade.submit_upper(draft)
        except UpperRefusal as exc:
            log.warning("EBM %s refused by the county: %s", ebm.ebm_id, exc.desc)
            return _Outcome(exc.code, exc.desc)
        except LookupError as exc:
            return _Outcome(ResultCode.OTHER_ERROR, f"{exc}")
        log.info(
            "EBM %s from %s accepted as county broadcast %s (%s)",
            ebm.ebm_id,
            ebd.header.src_ebrid,
            local_id,
            draft.primary.title,
        )
        return _Outcome(ResultCode.OK, _OK_DESC, ebm.ebm_id, local_id)

    async def _state_request(self, ebd: EBD, req: EBMStateRequest) -> _Outcome:
        local = await local_for_upper(self._engine, req.ebm_id) or req.ebm_id
        snap = await self._facade.broadcast_state(local)
        if snap is None:
            return _Outcome(ResultCode.OTHER_ERROR, f"未找到 EBMID {req.ebm_id} 的播发记录")
        body = state_response(
            snap,
            ebm_id=req.ebm_id,
            now=self._clock.now(),
            inventory=self._facade.inventory(),
            success_ratio=self._success_ratio,
        )
        await self._answer(ebd, body)
        return _Outcome(ResultCode.OK, _OK_DESC)

    async def _omd(self, ebd: EBD, req: OMDRequest) -> _Outcome:
        now = self._clock.now()
        inv = self._facade.inventory()
        answer: Body
        if req.omd_type is OMDType.EBM_BRD_LOG:
            p = req.params
            snaps = await self._facade.broadcasts_between(
                p.rpt_start_time if p else None, p.rpt_end_time if p else None
            )
            items = []
            for s in brd_log_window(p, snaps):
                origin = await upper_origin(self._engine, s.ebm_id)
                items.append(
                    brd_item(
                        s,
                        ebm_id=origin.upper_ebm_id if origin else s.ebm_id,
                        now=now,
                        inventory=inv,
                        platform_name=self._facade.platform_name,
                        platform_code=self._facade.platform_code,
                    )
                )
            answer = EBMBrdLog(tuple(items), p)
        else:
            answer = resource_report(
                req.omd_type,
                inventory=inv,
                states=await self._facade.terminal_states(),
                now=now,
                params=req.params,
                inventory_changed_at=self._facade.inventory_changed_at(),
                platform_url=self._maker.callback_url,
            )
        await self._answer(ebd, answer)
        return _Outcome(ResultCode.OK, _OK_DESC)

    async def _answer(self, request: EBD, body: Body) -> None:
        url = self.reply_url(request.header)
        if url is None:
            log.warning(
                "no reply address for %s from %s (no SRC/URL and no configured peer); answer dropped",
                request.ebd_id,
                request.header.src_ebrid,
            )
            return
        await self._upward.queue(
            f"answer:{request.ebd_id}",
            body,
            dest_ebrid=request.header.src_ebrid,
            url=url,
            related=request.ebd_id,
        )

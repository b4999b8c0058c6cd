"""The media-centre link: each broadcast published once (retried until accepted), programme submissions
stored as pending and decided by an operator."""

from __future__ import annotations

from pathlib import Path

import pytest
from upper_helpers import county_rig

from broadcast.interconnect import media
from broadcast.model import BroadcastState


async def test_broadcast_published_once_after_retries(tmp_path: Path) -> None:
    async with county_rig(tmp_path, with_media=True) as rig:
        assert rig.media is not None
        await rig.province.send_ebm(title="森林火险橙色预警")
        local = next(iter(rig.facade.snaps))
        rig.facade.air(local, targets=3, played=0, state=BroadcastState.RENDERING)
        await rig.ic.reporter.tick()
        await rig.ic.outbox.deliver_due()
        assert rig.media.documents == {}  # not on air yet
        rig.media.reject_next(1)
        rig.clock.advance(1)
        rig.facade.air(local, targets=3, played=1, state=BroadcastState.BROADCASTING)
        await rig.ic.reporter.tick()
        await rig.ic.outbox.deliver_due()
        assert rig.media.documents == {}
        rig.clock.advance(1)
        rig.facade.air(local, targets=3, played=3, state=BroadcastState.COMPLETED)
        await rig.ic.reporter.tick()
        rig.clock.advance(600)
        await rig.ic.outbox.deliver_due()
        doc = rig.media.documents[local]
        assert rig.media.deliveries[local] == 1
        assert doc["title"] == "森林火险橙色预警"
        assert doc["area_names"] == ["安宁市"]
        assert doc["audio_url"] == "http://127.0.0.1:1/audio/abc.mp3"
        assert doc["start_at"].endswith("+08:00")
        assert rig.media.violations == []


async def test_programme_submission_api(tmp_path: Path) -> None:
    async with county_rig(tmp_path, with_media=True, media_token="s3cret") as rig:
        assert rig.media is not None
        url = f"{rig.county_url}/api/media/programmes"
        doc = {
            "submission_id": "MC-001",
            "title": "防汛知识",
            "text": "汛期请远离河道。",
            "start_at": "2026-11-06T08:00:00+08:00",
            "area_codes": ["530181001"],
        }
        status, body = await rig.media.submit_programme(url, doc)
        assert status == 401 and "令牌" in body["message"]
        status, body = await rig.media.submit_programme(url, doc, token="s3cret")
        assert status == 201 and body["status"] == "pending"
        assert body["area_codes"] == ["530181001000"]
        status, body = await rig.media.submit_programme(url, doc, token="s3cret")
        assert status == 200  # resubmitted id: stored once
        status, body = await rig.media.submit_programme(
            url, {**doc, "submission_id": "MC-002", "text": ""}, token="s3cret"
        )
        assert status == 400 and body["field"] == "text" and "audio_url" in body["message"]
        status, body = await rig.media.submit_programme(
            url, {**doc, "submission_id": "MC-003", "audio_url": "ftp://x/y.mp3"}, token="s3cret"
        )
        assert status == 400 and body["field"] == "audio_url"

        pending = await media.list_submissions(rig.engine, media.SubmissionStatus.PENDING)
        assert [p.submission_id for p in pending] == ["MC-001"]
        decided = await media.decide_submission(
            rig.engine, "MC-001", approve=True, actor="值班员张三", now=rig.clock.now()
        )
        assert decided.status is media.SubmissionStatus.APPROVED and decided.decided_by == "值班员张三"
        with pytest.raises(media.SubmissionError) as again:
            await media.decide_submission(rig.engine, "MC-001", approve=False, actor="x", now=rig.clock.now())
        assert again.value.fault is media.SubmissionFault.ALREADY_DECIDED
        with pytest.raises(media.SubmissionError) as missing:
            await media.decide_submission(rig.engine, "MC-404", approve=True, actor="x", now=rig.clock.now())
        assert missing.value.fault is media.SubmissionFault.NOT_FOUND
        assert await media.list_submissions(rig.engine, media.SubmissionStatus.PENDING) == []

"""Builds small CAP documents in memory for table-driven tests (the realistic corpus is tests/data/cap)."""

from __future__ import annotations

from pathlib import Path

NS12 = "urn:oasis:names:tc:emergency:cap:1.2"
CORPUS = Path(__file__).resolve().parent.parent / "data" / "cap"
EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
EVENT_TABLE = Path(__file__).resolve().parent.parent.parent / "config" / "event-types.tsv"


DEFAULT_TIMES = (
    "<effective>2025-07-12T04:30:00+08:00</effective><expires>2025-07-13T04:30:00+08:00</expires>"
)


def info(
    *,
    language: str = "zh-CN",
    event: str = "暴雨",
    headline: str = "安宁市气象台发布暴雨红色预警[Ⅰ级/特别严重]",
    severity: str = "Extreme",
    category: str = "Met",
    description: str = "安宁市气象台发布暴雨红色预警信号：请注意防范。",
    geocode: str | None = "530181000000",
    value_name: str = "CPEAS Geographic Code",
    extra: str = "",
    area_extra: str = "",
    times: str = DEFAULT_TIMES,
) -> str:
    geo = (
        f"<geocode><valueName>{value_name}</valueName><value>{geocode}</value></geocode>"
        if geocode is not None
        else ""
    )
    lang = f"<language>{language}</language>" if language else ""
    return (
        f"<info>{lang}<category>{category}</category><event>{event}</event>"
        f"<urgency>Unknown</urgency><severity>{severity}</severity><certainty>Unknown</certainty>"
        f"{times}<senderName>安宁市气象台</senderName>"
        f"<headline>{headline}</headline><description>{description}</description>{extra}"
        f"<area><areaDesc>安宁市</areaDesc>{area_extra}{geo}</area></info>"
    )


def alert(
    *infos: str,
    identifier: str = "53018141600000_20250712043000",
    status: str = "Actual",
    msg_type: str = "Alert",
    scope: str = "Public",
    sent: str = "2025-07-12T04:30:00+08:00",
    references: str = "",
    ns: str | None = NS12,
    extra: str = "",
) -> bytes:
    xmlns = f' xmlns="{ns}"' if ns else ""
    refs = f"<references>{references}</references>" if references else ""
    body = "".join(infos) if infos else info()
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<alert{xmlns}>'
        f"<identifier>{identifier}</identifier><sender>Anning_Meteorological_Observatory</sender>"
        f"<sent>{sent}</sent><status>{status}</status><msgType>{msg_type}</msgType><scope>{scope}</scope>"
        f"{refs}{body}{extra}</alert>\n"
    ).encode()

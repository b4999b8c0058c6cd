"""Builds CMA-style CAP 1.2 documents for end-to-end tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

BJ = "+08:00"


def _t(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def make_cap(
    identifier: str,
    geocode: str = "530181000000",
    *,
    status: str = "Actual",
    msg_type: str = "Alert",
    references: str = "",
    headline: str = "安宁市气象台发布暴雨红色预警[Ⅰ级/特别严重]",
    expires_in: timedelta = timedelta(hours=3),
    sent: datetime | None = None,
    area_xml: str | None = None,
) -> bytes:
    sent = sent or datetime.now(UTC)
    refs = f"<references>{references}</references>" if references else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>Anning_Meteorological_Observatory</sender>
  <sent>{_t(sent)}</sent>
  <status>{status}</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {refs}
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨</event>
    <urgency>Unknown</urgency>
    <severity>Extreme</severity>
    <certainty>Unknown</certainty>
    <effective>{_t(sent)}</effective>
    <expires>{_t(sent + expires_in)}</expires>
    <senderName>安宁市气象台</senderName>
    <headline>{headline}</headline>
    <description>安宁市气象台{sent.astimezone(UTC).hour}时发布暴雨红色预警信号：过去3小时连然街道、金方街道降雨量已达100毫米以上，且降雨将持续。请注意防范。</description>
    <instruction>1. 停止集会、停课、停业；2. 做好山洪、滑坡、泥石流等灾害的防御工作。</instruction>
    {area_xml or f"<area><areaDesc>安宁市</areaDesc><geocode><valueName>CPEAS Geographic Code</valueName><value>{geocode}</value></geocode></area>"}
  </info>
</alert>
""".encode()


def reference(identifier: str, sent: datetime, sender: str = "Anning_Meteorological_Observatory") -> str:
    return f"{sender},{identifier},{_t(sent)}"

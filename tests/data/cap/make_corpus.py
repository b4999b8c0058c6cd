"""Writes the CAP test corpus (tests/data/cap/*.xml) and the examples (examples/cap-*.xml).

The documents imitate the China Meteorological Administration feed (en-US + zh-CN info pairs, CPEAS
geocodes, "Unknown" urgency/certainty, colour and grade in the headline) and the faults of real feeds.
Run it again after changing a template: ``.venv/bin/python tests/data/cap/make_corpus.py``.
The checked-in files are the test input; this script only documents how they were made.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent.parent.parent / "examples"
NS12 = "urn:oasis:names:tc:emergency:cap:1.2"
NS11 = "urn:oasis:names:tc:emergency:cap:1.1"
OFFICE = "53018141600000"  # Anning meteorological observatory (illustrative 14-digit office code)
SENDER = "Anning_Meteorological_Observatory"

GUIDE = {
    "暴雨": "防御指南：1.政府及相关部门按照职责做好防暴雨应急和抢险工作；"
    "2.停止集会、停课、停业（除特殊行业外）；"
    "3.做好山洪、滑坡、泥石流等灾害的防御和抢险工作。",
    "雷电": "防御指南：1.政府及相关部门按照职责做好防雷工作；2.密切关注天气，尽量避免户外活动。",
    "台风": "防御指南：1.停止室内外大型集会和高空等户外危险作业；"
    "2.加固门窗、围板、棚架等易被风吹动的搭建物。",
    "大风": "防御指南：1.做好防风准备；2.关好门窗，加固围板、棚架、广告牌等易被风吹动的搭建物。",
    "高温": "防御指南：1.做好防暑降温准备；2.午后尽量减少户外活动；3.对老、弱、病、幼人群提供防暑降温指导。",
    "大雾": "防御指南：1.驾驶人员注意雾的变化，小心驾驶；2.户外活动注意安全。",
}


@dataclass
class Warning:
    event_zh: str
    event_en: str
    colour_zh: str
    colour_en: str
    grade: str  # e.g. "Ⅰ级/特别严重"
    grade_en: str  # e.g. "I/Particularly serious"
    severity: str
    criterion: str


RAIN_RED = Warning(
    "暴雨", "Rainstorm", "红色", "Red", "Ⅰ级/特别严重", "I/Particularly serious", "Extreme",
    "过去3小时，安宁市连然街道、金方街道、温泉街道已出现100毫米以上降雨，且降雨将持续。",
)
THUNDER_YELLOW = Warning(
    "雷电", "Thunder", "黄色", "Yellow", "Ⅲ级/较重", "III/Relatively serious", "Moderate",
    "预计未来6小时安宁市将出现雷电活动，局地伴有短时强降水、冰雹等强对流天气。",
)
TYPHOON_ORANGE = Warning(
    "台风", "Typhoon", "橙色", "Orange", "Ⅱ级/严重", "II/Serious", "Severe",
    "受台风外围影响，预计未来12小时安宁市平均风力可达10级以上。",
)
GALE_BLUE = Warning(
    "大风", "Gale", "蓝色", "Blue", "Ⅳ级/一般", "IV/General", "Minor",
    "预计未来24小时安宁市将出现平均风力6级以上，阵风7级以上的大风天气。",
)
HEAT_ORANGE = Warning(
    "高温", "Heat Wave", "橙色", "Orange", "Ⅱ级/严重", "II/Serious", "Severe",
    "预计未来24小时安宁市最高气温将升至37℃以上。",
)
FOG_YELLOW = Warning(
    "大雾", "Fog", "黄色", "Yellow", "Ⅲ级/较重", "III/Relatively serious", "Moderate",
    "预计未来12小时安宁市草铺街道、禄脿街道将出现能见度小于500米的雾。",
)

ANNING = [("安宁市", "530181000000")]
LIANRAN = [("安宁市连然街道", "530181001000")]


def geocode_area(desc: str, code: str, value_name: str = "CPEAS Geographic Code", extra: str = "") -> str:
    return (
        f"    <area>\n      <areaDesc>{desc}</areaDesc>\n{extra}"
        f"      <geocode>\n        <valueName>{value_name}</valueName>\n        <value>{code}</value>\n"
        "      </geocode>\n    </area>\n"
    )


def cma(
    w: Warning,
    *,
    stamp: str = "20250712043000",
    sent: str = "2025-07-12T04:30:00+08:00",
    expires: str = "2025-07-13T04:30:00+08:00",
    msg_type: str = "Alert",
    status: str = "Actual",
    verb_zh: str = "发布",
    verb_en: str = "issued",
    areas: list[tuple[str, str]] | None = None,
    references: str = "",
    ns: str | None = NS12,
    encoding: str = "UTF-8",
    area_xml: str = "",
    note: str = "",
    en_severity: str | None = None,
    zh_severity: str | None = None,
    identifier: str | None = None,
    zh_language: str = "zh-CN",
) -> str:
    areas = ANNING if areas is None else areas
    area_block = area_xml or "".join(geocode_area(d, c) for d, c in areas)
    day = f"{stamp[0:4]}年{stamp[4:6]}月{stamp[6:8]}日{stamp[8:10]}时{stamp[10:12]}分"
    ident = f"{OFFICE}_{stamp}" if identifier is None else identifier
    ident_xml = f"  <identifier>{ident}</identifier>\n" if ident else ""
    ref_xml = f"  <references>{references}</references>\n" if references else ""
    note_xml = f"  <note>{note}</note>\n" if note else ""
    xmlns = f' xmlns="{ns}"' if ns else ""
    en_head = f"Anning Meteorological Observatory {verb_en} {w.event_en} {w.colour_en} Warning [{w.grade_en}]"
    zh_head = f"安宁市气象台{verb_zh}{w.event_zh}{w.colour_zh}预警[{w.grade}]"
    zh_desc = f"安宁市气象台{day}{verb_zh}{w.event_zh}{w.colour_zh}预警信号：{w.criterion}请注意防范。"
    guide = GUIDE.get(w.event_zh, "")
    zh_instr = f"    <instruction>{guide}</instruction>\n" if guide else ""
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        f"<alert{xmlns}>\n"
        f"{ident_xml}"
        f"  <sender>{SENDER}</sender>\n"
        f"  <sent>{sent}</sent>\n"
        f"  <status>{status}</status>\n"
        f"  <msgType>{msg_type}</msgType>\n"
        "  <scope>Public</scope>\n"
        f"{note_xml}{ref_xml}"
        "  <info>\n"
        "    <language>en-US</language>\n"
        "    <category>Met</category>\n"
        f"    <event>{w.event_en}</event>\n"
        "    <urgency>Unknown</urgency>\n"
        f"    <severity>{en_severity or w.severity}</severity>\n"
        "    <certainty>Unknown</certainty>\n"
        f"    <effective>{sent}</effective>\n"
        f"    <expires>{expires}</expires>\n"
        "    <senderName>Anning Meteorological Observatory</senderName>\n"
        f"    <headline>{en_head}</headline>\n"
        f"    <description>Anning Meteorological Observatory {verb_en} {w.event_en} {w.colour_en} Warning."
        "</description>\n"
        f"{area_block}"
        "  </info>\n"
        "  <info>\n"
        f"    <language>{zh_language}</language>\n"
        "    <category>Met</category>\n"
        f"    <event>{w.event_zh}</event>\n"
        "    <urgency>Unknown</urgency>\n"
        f"    <severity>{zh_severity or w.severity}</severity>\n"
        "    <certainty>Unknown</certainty>\n"
        f"    <effective>{sent}</effective>\n"
        f"    <expires>{expires}</expires>\n"
        "    <senderName>安宁市气象台</senderName>\n"
        f"    <headline>{zh_head}</headline>\n"
        f"    <description>{zh_desc}</description>\n"
        f"{zh_instr}"
        f"{area_block}"
        "  </info>\n"
        "</alert>\n"
    )


def ref(stamp: str, sent: str) -> str:
    return f"{SENDER},{OFFICE}_{stamp},{sent}"


POLYGON_AREA = (
    "    <area>\n      <areaDesc>安宁市青龙街道、禄脿街道</areaDesc>\n"
    "      <polygon>24.93,102.30 24.99,102.38 24.85,102.45 24.80,102.33 24.93,102.30</polygon>\n"
    "      <circle>24.92,102.48 8.5</circle>\n"
    "    </area>\n"
)
BAD_POLYGON_OPEN = (
    "    <area>\n      <areaDesc>安宁市青龙街道</areaDesc>\n"
    "      <polygon>24.93,102.30 24.99,102.38 24.85,102.45 24.80,102.33</polygon>\n"
    "    </area>\n"
)
BAD_POLYGON_SWAPPED = (
    "    <area>\n      <areaDesc>安宁市草铺街道</areaDesc>\n"
    "      <polygon>102.30,24.93 102.38,24.99 102.45,24.85 102.30,24.93</polygon>\n"
    "    </area>\n"
)

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE alert [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>&lol9;</identifier>
</alert>
"""

XXE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE alert [
  <!ENTITY xxe SYSTEM "file:///etc/passwd">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>53018141600000_20250712043000</identifier>
  <sender>&xxe;</sender>
  <sent>2025-07-12T04:30:00+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
</alert>
"""

DEEP = (
    '<?xml version="1.0"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">\n'
    + "<note>" * 200
    + "x"
    + "</note>" * 200
    + "\n</alert>\n"
)


def corpus() -> dict[str, bytes]:
    u = "utf-8"
    sent2 = "2025-07-12T06:00:00+08:00"
    files: dict[str, bytes] = {
        "cma-rainstorm-red.xml": cma(RAIN_RED).encode(u),
        "cma-thunder-yellow.xml": cma(THUNDER_YELLOW, stamp="20250712150000",
                                      sent="2025-07-12T15:00:00+08:00",
                                      expires="2025-07-12T21:00:00+08:00").encode(u),
        "cma-typhoon-orange.xml": cma(TYPHOON_ORANGE).encode(u),
        "cma-gale-blue.xml": cma(GALE_BLUE).encode(u),
        "cma-heat-orange.xml": cma(HEAT_ORANGE).encode(u),
        "cma-fog-yellow.xml": cma(FOG_YELLOW, areas=[("安宁市草铺街道", "530181006000"),
                                                    ("安宁市禄脿街道", "530181009000")]).encode(u),
        "cma-rainstorm-street.xml": cma(RAIN_RED, areas=LIANRAN).encode(u),
        "cap11-gale.xml": cma(GALE_BLUE, ns=NS11).encode(u),
        "bom-utf8.xml": codecs.BOM_UTF8 + cma(THUNDER_YELLOW).encode(u),
        "gb18030.xml": cma(RAIN_RED, encoding="GB18030").encode("gb18030"),
        "gbk-declared-gb2312.xml": cma(HEAT_ORANGE, encoding="GB2312").encode("gbk"),
        "no-namespace.xml": cma(FOG_YELLOW, ns=None).encode(u),
        "wrong-namespace.xml": cma(FOG_YELLOW, ns="http://www.incident.com/cap/1.0").encode(u),
        "update-upgrade.xml": cma(RAIN_RED, stamp="20250712060000", sent=sent2, msg_type="Update",
                                  verb_zh="升级", verb_en="upgraded",
                                  references=ref("20250712043000", "2025-07-12T04:30:00+08:00")).encode(u),
        "cancel.xml": cma(RAIN_RED, stamp="20250712100000", sent="2025-07-12T10:00:00+08:00",
                          msg_type="Cancel", verb_zh="解除", verb_en="lifted",
                          references=ref("20250712043000", "2025-07-12T04:30:00+08:00") + " "
                          + ref("20250712060000", sent2)).encode(u),
        "exercise.xml": cma(THUNDER_YELLOW, status="Exercise", note="应急广播月度演练").encode(u),
        "test-status.xml": cma(GALE_BLUE, status="Test").encode(u),
        "system-status.xml": cma(GALE_BLUE, status="System").encode(u),
        "polygon-circle.xml": cma(THUNDER_YELLOW, area_xml=POLYGON_AREA).encode(u),
        "bad-polygon-open.xml": cma(THUNDER_YELLOW, area_xml=BAD_POLYGON_OPEN).encode(u),
        "bad-polygon-swapped.xml": cma(THUNDER_YELLOW, area_xml=BAD_POLYGON_SWAPPED).encode(u),
        "missing-identifier.xml": cma(GALE_BLUE, identifier="").encode(u),
        "headline-colour-wins.xml": cma(RAIN_RED, en_severity="Moderate", zh_severity="Moderate").encode(u),
        "non-cpeas-geocode.xml": cma(
            GALE_BLUE,
            area_xml=geocode_area("安宁市", "530181000000")
            + geocode_area("Anning", "CN-53-01-81", value_name="ISO3166-2"),
        ).encode(u),
        "billion-laughs.xml": BILLION_LAUGHS.encode(u),
        "xxe-file.xml": XXE.encode(u),
        "deeply-nested.xml": DEEP.encode(u),
    }
    return files


def main() -> None:
    for name, data in corpus().items():
        (HERE / name).write_bytes(data)
    EXAMPLES.mkdir(exist_ok=True)
    (EXAMPLES / "cap-rainstorm-red-anning.xml").write_bytes(cma(RAIN_RED).encode("utf-8"))
    (EXAMPLES / "cap-rainstorm-red-lianran.xml").write_bytes(cma(RAIN_RED, areas=LIANRAN).encode("utf-8"))
    (EXAMPLES / "cap-thunder-yellow-update-anning.xml").write_bytes(
        cma(THUNDER_YELLOW, stamp="20250712160000", sent="2025-07-12T16:00:00+08:00", msg_type="Update",
            verb_zh="更新", verb_en="updated",
            references=ref("20250712150000", "2025-07-12T15:00:00+08:00")).encode("utf-8"))
    (EXAMPLES / "cap-exercise-anning.xml").write_bytes(
        cma(THUNDER_YELLOW, status="Exercise", note="应急广播月度演练").encode("utf-8"))


if __name__ == "__main__":
    main()

"""CAP event → EBM EventType (5-character national event code, config/event-types.tsv).

Owns the table of CMA warning signals (气象灾害预警信号) and other common CAP events, in Chinese and in
the English words of the CMA en-US block. Pure lookups: never does I/O, never reads the clock.

Choices where the national table has no exact row (documented here, tested in tests/sources):
- 霾 (haze), 道路结冰 (road icing), 电线积冰 (wire icing) → 11B99 其它气象灾害 (no own row);
  低温 / 持续低温 / 冰冻 → 11B08 低温冻害; 雷雨大风 (thunderstorm gale) → 11B06 大风 (it is a wind
  warning); 森林火险 (forest fire danger) → 11G00 森林草原火灾; 干旱 (meteorological drought) →
  11A52 农业干旱; 地质灾害 (geological hazard risk) → 11D00.
- An event no pattern matches is NOT an error: a real warning must never be dropped by an unattended
  relay because of a new wording. It gets the "other" code of its CAP category (Met → 11B99,
  Geo → 11D99, Fire → 11G00, Safety/Security → 14000, Health → 13000, Rescue/Transport/Infra/Env/CBRNE →
  12000, otherwise 10000 突发事件) and `EventMatch.guessed` is True so the caller can warn and hold it
  for an operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Ordered: more specific patterns first (雷雨大风 before 雷电 and 大风, 持续低温 before 低温, 干热风
# before 大风, 沙尘暴 before 大风, 森林火险 before 火灾 …).
_ZH: tuple[tuple[str, str], ...] = (
    ("台风", "11B01"),
    ("龙卷", "11B02"),
    ("暴雨", "11B03"),
    ("暴雪", "11B04"),
    ("寒潮", "11B05"),
    ("雷雨大风", "11B06"),
    ("干热风", "11B11"),
    ("沙尘", "11B07"),
    ("大风", "11B06"),
    ("持续低温", "11B08"),
    ("低温", "11B08"),
    ("冰冻", "11B08"),
    ("高温", "11B09"),
    ("热浪", "11B10"),
    ("雷电", "11B14"),
    ("雷暴", "11B14"),
    ("冰雹", "11B15"),
    ("霜冻", "11B16"),
    ("大雾", "11B17"),
    ("浓雾", "11B17"),
    ("道路结冰", "11B99"),
    ("电线积冰", "11B99"),
    ("霾", "11B99"),
    ("森林火险", "11G00"),
    ("草原火险", "11G00"),
    ("森林火灾", "11G01"),
    ("草原火灾", "11G05"),
    ("山洪", "11A51"),
    ("内涝", "11A02"),
    ("洪水", "11A01"),
    ("干旱", "11A52"),
    ("滑坡", "11D01"),
    ("泥石流", "11D02"),
    ("崩塌", "11D03"),
    ("地面塌陷", "11D04"),
    ("地质灾害", "11D00"),
    ("地震", "11C00"),
    ("海啸", "11E01"),
    ("风暴潮", "11E02"),
    ("海冰", "11E03"),
    ("海浪", "11E04"),
    ("巨浪", "11E04"),
    ("赤潮", "11E05"),
    ("雾", "11B17"),
)

# English words of the CMA en-US block, matched case-insensitively on word boundaries.
_EN: tuple[tuple[str, str], ...] = (
    (r"typhoon|tropical\s+cyclone", "11B01"),
    (r"tornado", "11B02"),
    (r"rain\s*storm|heavy\s+rain", "11B03"),
    (r"snow\s*storm|blizzard|heavy\s+snow", "11B04"),
    (r"cold\s+wave", "11B05"),
    (r"thunderstorm\s+gale|thunder\s+gust|thunderstorm\s+and\s+gale", "11B06"),
    (r"dry[-\s]+hot\s+wind", "11B11"),
    (r"sand\s*storm|dust\s*storm|sand\s+and\s+dust", "11B07"),
    (r"gale|strong\s+wind|high\s+wind", "11B06"),
    (r"(?:continuous\s+|persistent\s+)?low\s+temperature|freez(?:e|ing)\s+injury|freeze", "11B08"),
    (r"heat\s*wave|high\s+temperature|extreme\s+heat", "11B09"),
    (r"thunder|lightning", "11B14"),
    (r"hail", "11B15"),
    (r"frost", "11B16"),
    (r"road\s+icing|icy\s+road|wire\s+icing|ice\s+accretion", "11B99"),
    (r"haze|smog", "11B99"),
    (r"(?:forest|grassland)\s+fire(?:\s+danger|\s+risk)?", "11G00"),
    (r"wild\s*fire", "11G00"),
    (r"flash\s+flood", "11A51"),
    (r"waterlogging|urban\s+flood", "11A02"),
    (r"flood", "11A01"),
    (r"drought", "11A52"),
    (r"landslide", "11D01"),
    (r"debris\s+flow|mud\s*slide|mudflow", "11D02"),
    (r"rock\s*fall|collapse", "11D03"),
    (r"geolog(?:ic|ical)\s+(?:hazard|disaster)", "11D00"),
    (r"earthquake", "11C00"),
    (r"tsunami", "11E01"),
    (r"storm\s+surge", "11E02"),
    (r"sea\s+ice", "11E03"),
    (r"(?:high|huge)\s+waves?", "11E04"),
    (r"red\s+tide", "11E05"),
    (r"fog", "11B17"),
)
_EN_RE = tuple((re.compile(rf"\b(?:{p})\b", re.IGNORECASE), code) for p, code in _EN)

_CATEGORY_FALLBACK = {
    "met": "11B99",
    "geo": "11D99",
    "fire": "11G00",
    "safety": "14000",
    "security": "14000",
    "health": "13000",
    "rescue": "12000",
    "transport": "12000",
    "infra": "12000",
    "env": "12000",
    "cbrne": "12000",
}
OTHER_EVENT = "10000"


@dataclass(frozen=True)
class EventMatch:
    code: str
    matched: str  # the word that matched, or the category used for the fallback
    guessed: bool = False


def match_zh(text: str) -> EventMatch | None:
    for word, code in _ZH:
        if word in text:
            return EventMatch(code, word)
    return None


def match_en(text: str) -> EventMatch | None:
    for pattern, code in _EN_RE:
        m = pattern.search(text)
        if m:
            return EventMatch(code, m.group(0))
    return None


_CODE = re.compile(r"^\s*(\d{2}[0-9A-Z]\d{2})\s*$")


def event_code(zh_texts: list[str], en_texts: list[str], categories: list[str]) -> EventMatch:
    """Match Chinese texts first (event, then headline), then English; fall back on the CAP category.

    Some feeds put the national code itself in ``event`` (e.g. "11B03"): it is taken as is.
    """
    for text in (*zh_texts, *en_texts):
        m = _CODE.match(text)
        if m:
            return EventMatch(m.group(1), m.group(1))
    for text in zh_texts:
        found = match_zh(text)
        if found:
            return found
    for text in en_texts:
        found = match_en(text)
        if found:
            return found
    for category in categories:
        code = _CATEGORY_FALLBACK.get(category.strip().lower())
        if code:
            return EventMatch(code, category, guessed=True)
    return EventMatch(OTHER_EVENT, "", guessed=True)

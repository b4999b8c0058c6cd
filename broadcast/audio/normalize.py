"""Text normalisation for Mandarin speech (播报文本规范化): written warning text → what a TTS engine reads.

Owns `normalise_for_speech`, which rewrites digits, units, symbols, grade numerals, dates, times, phone
numbers and list markers into Hanzi so that any Mandarin engine (the offline espeak-ng "cmn" voice reads
Hanzi well but digits and symbols poorly) speaks them the way a Chinese announcer would.

Reading conventions chosen here (as in Chinese broadcasting practice):
- quantities are read as values: 1,200 → 一千二百, 20500 → 两万零五百 (两 only for a leading 2 before
  千/万/亿, and for exactly 2 before a counting word: 2小时 → 两小时; grades and dates keep 二: 2级, 2日);
- years, typhoon numbers, road numbers and other codes are read digit by digit with 一 (2026年 → 二零二六年);
- phone numbers (hot lines such as 12379, 110; landlines 0871-68123456; mobiles) are read digit by digit
  with 1 as 幺, the way announcers avoid confusing 一 and 七; the hyphen of a landline becomes a space;
- list markers "1." "（2）" "3、" "④" at the start of a clause become 第一， 第二， …;
- ranges "24-48小时" "3~5天" "-5～-3℃" become 二十四到四十八小时 …, 零下五到零下三摄氏度;
- grades "[Ⅲ级/较重]" become "，三级，较重".

This module only rewrites the parts it recognises and leaves every Hanzi character as it is (but for the
分 of a zero minute, 08时00分 → 八时, and 至 in a clock range, 10:00至12:00 → 十点到十二点), so place names
(八街街道, 县街, 禄脿) and already-normalised text come through unchanged; the function is idempotent. It must
never do I/O, read the clock, or depend on the rest of the product. Number spelling and the constant tables
live in `broadcast.audio.normalize_lexicon`; this module holds the rules and the pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from broadcast.audio.normalize_lexicon import (
    ABBREVIATIONS,
    ASCII_ROMAN,
    CIRCLED,
    DIGITS,
    FULLWIDTH_TABLE,
    NUM,
    PHONE_AFTER_CUES,
    PHONE_CUES,
    PHONE_LIST_GAP,
    RANGE_CJK_UNIT,
    RANGE_SEP,
    ROMAN,
    SERVICE_LONG,
    SERVICE_SHORT,
    SIGN,
    TEMPERATURE_UNITS,
    UNIT_RE,
    UNIT_WORD,
    digits_zh,
    int_to_zh,
    number_to_zh,
    quantity_zh,
)

# ---------------------------------------------------------------------------------------------------
# Rules. Each rule is a compiled pattern and a function of the match; they run in order, and every rule
# is triggered only by digits or symbols, never by Hanzi, which is what keeps the function idempotent.


@dataclass(frozen=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]
    render: Callable[[re.Match[str]], str]

    def apply(self, text: str) -> str:
        return self.pattern.sub(self.render, text)


def _grade_bracket(m: re.Match[str]) -> str:
    before = m.string[m.start() - 1] if m.start() > 0 else ""
    lead = "" if before == "" or before in _PAUSES else "，"
    return f"{lead}{int_to_zh(_grade_value(m['grade']))}级，{m['word']}"


def _grade_value(token: str) -> int:
    if token in ROMAN:
        return ROMAN[token]
    if token in ASCII_ROMAN:
        return ASCII_ROMAN[token]
    return int(token)


def _date(m: re.Match[str]) -> str:
    spoken = f"{digits_zh(m['y'])}年{int_to_zh(int(m['mo']))}月{int_to_zh(int(m['d']))}日"
    if m["h"] is not None:
        spoken += _clock_time(m["h"], m["mi"], m["s"])
    return spoken


def _clock_time(h: str, mi: str, s: str | None) -> str:
    spoken = int_to_zh(int(h)) + "点"
    if int(mi) or (s is not None and int(s)):
        spoken += _minute(mi) + "分"
    if s is not None and int(s):
        spoken += _minute(s) + "秒"
    return spoken


def _minute(mi: str) -> str:
    value = int(mi)
    return ("零" + DIGITS[value]) if 0 < value < 10 else int_to_zh(value)


def _time_range(m: re.Match[str]) -> str:
    spoken = _clock_time(m["h"], m["mi"], m["s"])
    if m["h2"] is not None:
        spoken += "到" + _clock_time(m["h2"], m["mi2"], m["s2"])
    return spoken


def _hour_minute(m: re.Match[str]) -> str:
    hour = int_to_zh(int(m["h"])) + m["hu"]
    minute = int(m["mi"])
    if minute == 0 and not m["s"]:
        return hour
    spoken = hour + _minute(m["mi"]) + "分"
    if m["s"]:
        spoken += _minute(m["s"]) + "秒"
    return spoken


def _ratio(m: re.Match[str]) -> str:
    return f"{number_to_zh(m['a'])}比{number_to_zh(m['b'])}"


def _coordinate(m: re.Match[str]) -> str:
    hemisphere = {"N": "北纬", "S": "南纬", "E": "东经", "W": "西经"}[m["hemi"] or m["hemi2"]]
    spoken = f"{hemisphere}{number_to_zh(m['deg'])}度"
    if m["min"]:
        spoken += number_to_zh(m["min"]) + "分"
    if m["sec"]:
        spoken += number_to_zh(m["sec"]) + "秒"
    return spoken


def _degrees_minutes(m: re.Match[str]) -> str:
    spoken = f"{number_to_zh(m['deg'])}度{number_to_zh(m['min'])}分"
    if m["sec"]:
        spoken += number_to_zh(m["sec"]) + "秒"
    return spoken


def _list_marker(m: re.Match[str]) -> str:
    groups = m.groupdict()
    written = groups.get("n") or groups.get("p")
    value = int(written) if written else CIRCLED[m["c"]]
    lead = groups.get("lead")
    if lead is None:  # a marker in running text: keep a pause before it
        before = m.string[m.start() - 1] if m.start() > 0 else ""
        lead = "" if before == "" or before in _PAUSES else "，"
    return f"{lead}第{int_to_zh(value)}，"


def _is_ordinal(m: re.Match[str]) -> bool:
    """第2个 is 第二个, never 第两个."""
    return m.string[max(0, m.start() - 1) : m.start()] == "第"


def _signed(sign: str | None, number: str, unit: str | None, following: str, ordinal: bool = False) -> str:
    spoken = quantity_zh(number, following=following, ordinal=ordinal)
    if sign:
        spoken = ("零下" if unit in TEMPERATURE_UNITS else "负") + spoken
    return spoken


def _range(m: re.Match[str]) -> str:
    u1, u2 = m["u1"], m["u2"]
    unit = u2 or u1
    following = m.string[m.end() : m.end() + 2]
    a = _signed(m["s1"], m["n1"], unit, following, _is_ordinal(m))
    b = _signed(m["s2"], m["n2"], unit, following, _is_ordinal(m))
    if unit == "%":
        return f"百分之{a}到百分之{b}"
    if unit == "‰":
        return f"千分之{a}到千分之{b}"
    spoken_u1 = UNIT_WORD.get(u1, u1) if u1 and u1 != u2 else ""
    return f"{a}{spoken_u1}到{b}{UNIT_WORD.get(u2, '') if u2 else ''}"


def _measured(m: re.Match[str]) -> str:
    unit = m["u"]
    following = m.string[m.end() : m.end() + 2]
    spoken = _signed(m["s"], m["n"], unit, following, _is_ordinal(m))
    if unit == "%":
        return "百分之" + spoken
    if unit == "‰":
        return "千分之" + spoken
    return spoken + UNIT_WORD[unit]


def _phone(m: re.Match[str]) -> str:
    return digits_zh(re.sub(r"[-\s]+", " ", m[0]).strip(), yao=True)


def _plain_number(m: re.Match[str]) -> str:
    written = m["n"]
    following = m.string[m.end() : m.end() + 2]
    whole, _, frac = written.partition(".")
    if len(whole) > 1 and whole[0] == "0" and not frac:
        # 08时 → 八时, but a zero-led code such as 007 or 0871 is read digit by digit.
        return int_to_zh(int(whole)) if following[:1] in tuple("时点日号月") else digits_zh(whole)
    spoken = quantity_zh(written, following=following, ordinal=_is_ordinal(m))
    return ("负" + spoken) if m["s"] else spoken


_COMPARISONS = {
    "≥": "大于等于", ">=": "大于等于", "≤": "小于等于", "<=": "小于等于",
    ">": "大于", "<": "小于", "±": "正负", "≈": "约",
}  # fmt: skip
_PAUSES = '，。；：、！？,;:!?\n （(【[“"'

_GRADE_TOKEN = r"(?P<grade>[ⅠⅡⅢⅣⅤ]|IV|III|II|I|V|[1-4])"
_LIST_LEAD = r"(?P<lead>^|[\n。；;：:！？!?]\s*|\s+)"

# Rules that claim digits with a fixed meaning (dates, times, codes, list markers) run before phone numbers.
_EARLY_RULES: tuple[_Rule, ...] = (
    _Rule(
        "grade-bracket",  # [Ⅲ级/较重] → ，三级，较重
        re.compile(
            rf"[\[【（(]\s*{_GRADE_TOKEN}\s*级\s*[/／、,，]\s*(?P<word>[\u4e00-\u9fff]{{1,4}})\s*[\]】）)]"
        ),
        _grade_bracket,
    ),
    _Rule(
        "grade-ascii-roman",
        re.compile(r"(?<![A-Za-z])(?P<r>IV|III|II|I|V)(?=级|类)"),
        lambda m: int_to_zh(ASCII_ROMAN[m["r"]]),
    ),
    _Rule("grade-roman", re.compile("[" + "".join(ROMAN) + "]"), lambda m: int_to_zh(ROMAN[m[0]])),
    _Rule(
        "abbreviation",
        re.compile(
            r"(?<![A-Za-z0-9])(?:"
            + "|".join(re.escape(a) for a, _ in ABBREVIATIONS)
            + r")(?![A-Za-z0-9]|\.\d)"
        ),
        lambda m: dict(ABBREVIATIONS)[m[0]],
    ),
    _Rule(
        "road-code",  # G320国道 → G三二零国道
        re.compile(r"(?<![A-Za-z])(?P<l>[GSXYZ])(?P<d>\d{1,4})(?=\s*(?:国道|省道|县道|乡道|线|高速|公路))"),
        lambda m: m["l"] + digits_zh(m["d"]),
    ),
    _Rule(
        "kilometre-stake",  # K12+300 → K十二加三百
        re.compile(r"(?<![A-Za-z])K(?P<a>\d+)\+(?P<b>\d+)"),
        lambda m: f"K{int_to_zh(int(m['a']))}加{int_to_zh(int(m['b']))}",
    ),
    _Rule(
        "iso-date",  # 2026-11-22 10:30 → 二零二六年十一月二十二日十点三十分
        re.compile(
            r"(?<![\d.])(?P<y>(?:19|20|21)\d\d)(?P<sep>[-/.])(?P<mo>0?[1-9]|1[0-2])(?P=sep)"
            r"(?P<d>0?[1-9]|[12]\d|3[01])(?![\d.])"
            r"(?:[ T](?P<h>[01]?\d|2[0-3]):(?P<mi>[0-5]\d)(?::(?P<s>[0-5]\d))?(?!\d))?"
        ),
        _date,
    ),
    _Rule(
        "hour-minute",  # 10时30分 → 十时三十分; 08时00分 → 八时; 10时05分 → 十时零五分
        re.compile(
            r"(?<![\d.])(?P<h>[01]?\d|2[0-4])(?P<hu>[时点])(?P<mi>[0-5]?\d)分(?:(?P<s>[0-5]?\d)秒)?(?!钟)"
        ),
        _hour_minute,
    ),
    _Rule(
        "clock-time",  # 10:30 → 十点三十分; 08:00-12:00 → 八点到十二点
        re.compile(
            r"(?<![\d.:])(?P<h>[01]?\d|2[0-4])[:：](?P<mi>[0-5]\d)(?:[:：](?P<s>[0-5]\d))?"
            r"(?:\s*(?:-|~|–|—|至|到)\s*(?P<h2>[01]?\d|2[0-4])[:：](?P<mi2>[0-5]\d)(?:[:：](?P<s2>[0-5]\d))?)?"
            r"(?![\d.:])"
        ),
        _time_range,
    ),
    _Rule(
        "ratio",  # 1:50000 → 一比五万
        re.compile(rf"(?<![\d.:])(?P<a>{NUM})\s*[:：]\s*(?P<b>{NUM})(?![\d.:])"),
        _ratio,
    ),
    _Rule(
        "comparison",  # ≥50毫米 → 大于等于五十毫米 (the number itself is read by the next rule)
        re.compile(r"(?P<op>≥|≤|>=|<=|>|<|±|≈)(?=\s*-?\d)"),
        lambda m: _COMPARISONS[m["op"]],
    ),
    _Rule(
        "fraction",  # 1/3 → 三分之一
        re.compile(r"(?<![\d./])(?P<a>\d+)/(?P<b>\d+)(?![\d./])"),
        lambda m: f"{int_to_zh(int(m['b']))}分之{int_to_zh(int(m['a']))}",
    ),
    _Rule(
        "landline",  # 0871-68123456 → 零八七幺 六八幺二三四五六
        re.compile(r"(?<![\d.])0\d{2,3}[-\s]?\d{7,8}(?![\d.])"),
        _phone,
    ),
    _Rule("service-400", re.compile(r"(?<![\d.])[48]00[-\s]?\d{3}[-\s]?\d{4}(?![\d.])"), _phone),
    _Rule("mobile", re.compile(r"(?<![\d.,])1[3-9]\d{9}(?![\d.])"), _phone),
    _Rule(
        "year-range",  # 2025-2026年 → 二零二五到二零二六年
        re.compile(r"(?<![\d.])(?P<a>\d{4})\s*(?:-|~|–|—|至|到)\s*(?P<b>\d{4})(?=年(?!一遇))"),
        lambda m: f"{digits_zh(m['a'])}到{digits_zh(m['b'])}",
    ),
    _Rule(
        "year",  # 2026年 → 二零二六年; but 1000年一遇 is a quantity
        re.compile(r"(?<![\d.,])(?P<y>\d{4})(?=年(?!一遇))"),
        lambda m: digits_zh(m["y"]),
    ),
    _Rule(
        "typhoon-number",  # 2305号台风 → 二三零五号台风
        re.compile(r"(?<![\d.,])(?P<n>\d{4})(?=号(?:台风|热带|超强|强热带))"),
        lambda m: digits_zh(m["n"]),
    ),
    _Rule(
        "typhoon-code",  # 台风“杜苏芮”（2305） → （二三零五）
        re.compile(r"(?<=[”\"」》])\s*(?P<o>[(（])(?P<n>\d{4})(?P<c>[)）])"),
        lambda m: (
            f"{m['o']}{digits_zh(m['n'])}{m['c']}"
            if "台风" in m.string[max(0, m.start() - 12) : m.start()]
            else m[0]
        ),
    ),
    _Rule(
        "dotted-number",  # section or version numbers: 1.2.3 → 一点二点三
        re.compile(r"(?<![\d.])\d+(?:\.\d+){2,}(?![\d.]*\d)"),
        lambda m: "点".join(int_to_zh(int(part)) for part in m[0].split(".")),
    ),
    _Rule(
        "list-marker",  # 1. / 1、 / （2） / ② at the start of a clause → 第一，
        re.compile(
            _LIST_LEAD
            + r"(?:(?P<n>[1-9]|1\d|20)(?:\.(?!\d)|、)|[(（](?P<p>[1-9]|1\d|20)[)）]|(?P<c>["
            + "".join(CIRCLED)
            + r"]))\s*(?=[\u4e00-\u9fffA-Za-z“\"《])"
        ),
        _list_marker,
    ),
    _Rule(
        "list-marker-parenthesised",  # （2） anywhere else is still a list item
        re.compile(r"[(（](?P<p>[1-9]|1\d|20)[)）]\s*(?=[\u4e00-\u9fff])"),
        _list_marker,
    ),
    _Rule(
        "circled-number",
        re.compile("(?P<c>[" + "".join(CIRCLED) + "])"),
        _list_marker,
    ),
    _Rule(
        "coordinate",  # 24.91°N → 北纬二十四点九一度; E102°28′ → 东经一百零二度二十八分
        re.compile(
            rf"(?:(?<![A-Za-z])(?P<hemi2>[NSEW])\s*)?(?P<deg>{NUM})\s*°"
            rf"(?:\s*(?P<min>{NUM})\s*[′'])?(?:\s*(?P<sec>{NUM})\s*[″\"])?"
            r"(?:\s*(?P<hemi>[NSEW])(?![A-Za-z]))?"
        ),
        lambda m: _coordinate(m) if (m["hemi"] or m["hemi2"]) else m[0],
    ),
    _Rule(
        "degrees-minutes",  # 102°28′ → 一百零二度二十八分
        re.compile(rf"(?P<deg>{NUM})\s*°\s*(?P<min>{NUM})\s*[′'](?:\s*(?P<sec>{NUM})\s*[″\"])?"),
        _degrees_minutes,
    ),
)

# Quantities: whatever digits are left after the early rules and phone numbers.
_LATE_RULES: tuple[_Rule, ...] = (
    _Rule(
        "range",  # 24-48小时, 3~5天, 50—100毫米, 60%-80%, -5～-3℃, 10-12级, 20时-23时
        re.compile(
            rf"(?<![\d.,])(?P<s1>{SIGN})?(?P<n1>{NUM})\s*(?P<u1>{UNIT_RE}|[{RANGE_CJK_UNIT}])?"
            rf"{RANGE_SEP}(?P<s2>-)?(?P<n2>{NUM})(?![\d.])\s*(?P<u2>{UNIT_RE})?"
        ),
        _range,
    ),
    _Rule(
        "measured",  # 78mm, 35℃, -5℃, 85%, 12.5m/s, 100km
        re.compile(rf"(?<![\d.,])(?P<s>{SIGN})?(?P<n>{NUM})(?![\d])\s?(?P<u>{UNIT_RE})"),
        _measured,
    ),
    _Rule(
        "unit-alone",  # a unit written without a number, e.g. "（单位：mm）", "风速（m/s）"
        re.compile(
            r"(?<![A-Za-z])(?P<u>km/h|m/s|m³/s|m3/s|mm/h|μg/m³|μg/m3|mg/m³|km²|hPa|mm|cm|km|°C|℃)(?![A-Za-z])"
        ),
        lambda m: UNIT_WORD[m["u"]],
    ),
    _Rule(
        "number",  # anything left: 1,200 → 一千二百; 12.5 → 十二点五; 08时 → 八时; 007 → 零零七
        re.compile(rf"(?<![\d.,])(?P<s>{SIGN})?(?P<n>{NUM})"),
        _plain_number,
    ),
)


def _phones(text: str) -> str:
    """Read hot lines and numbers after a phone word digit by digit with 幺; chains "110、119、120"."""
    out: list[str] = []
    pos = 0
    prev_end = -1
    for m in re.finditer(r"(?<![\d.,])\d{3,12}(?![\d.]|,\d{3}|\s?(?:" + UNIT_RE + "))", text):
        token = m[0]
        before = text[max(0, m.start() - 8) : m.start()]
        after = text[m.end() : m.end() + 6]
        cue_before = bool(re.search(r"(?:" + "|".join(PHONE_CUES) + r")[：:\s]*(?:为|是)?[：:\s]*$", before))
        cue_after = any(after.lstrip().startswith(c) for c in PHONE_AFTER_CUES)
        chained = prev_end >= 0 and bool(PHONE_LIST_GAP.match(text[prev_end : m.start()]))
        is_phone = (
            cue_before
            or (token in SERVICE_LONG)
            or (token in SERVICE_SHORT and (cue_after or chained))
            or (chained and (token in SERVICE_SHORT or len(token) >= 5))
        )
        if not is_phone:
            continue
        out.append(text[pos : m.start()])
        out.append(digits_zh(token, yao=True))
        pos = m.end()
        prev_end = m.end()
    out.append(text[pos:])
    return "".join(out)


_STEPS: tuple[Callable[[str], str], ...] = (
    *(rule.apply for rule in _EARLY_RULES),
    _phones,
    *(rule.apply for rule in _LATE_RULES),
)

_ASCII_PUNCT = str.maketrans({",": "，", ";": "；", ":": "：", "!": "！", "?": "？", "(": "（", ")": "）"})


def _punctuation(text: str) -> str:
    """After all digits are gone: ASCII punctuation becomes its Chinese form so pauses are consistent."""
    text = text.translate(_ASCII_PUNCT)
    text = re.sub(r"(?<=[^\x00-\x7f])\.(?=\s|$|[^\x00-\x7f])", "。", text)
    text = text.replace("~", "到").replace("℃", "摄氏度")
    return re.sub(r"[ \t]{2,}", " ", text)


def normalise_for_speech(text: str) -> str:
    """Rewrite written warning text into what a Mandarin TTS engine should read (see module docstring).

    The result holds no ASCII digits, keeps every Hanzi of the input, and is a fixed point:
    normalise_for_speech(normalise_for_speech(t)) == normalise_for_speech(t).
    """
    text = text.translate(FULLWIDTH_TABLE)
    # Full-width "．" and "：" are read as decimal point and clock colon only between digits.
    text = re.sub(r"(?<=\d)．(?=\d)", ".", text)
    for step in _STEPS:
        text = step(text)
    # Any digit a rule did not claim (there should be none) is still read, digit by digit.
    text = re.sub(r"\d", lambda m: DIGITS[int(m[0])], text)
    return _punctuation(text)

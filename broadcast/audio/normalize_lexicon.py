"""Lexicon for Mandarin speech normalisation (播报文本规范化词表): number words and the rule tables.

Owns how a number is spelled in Hanzi (`int_to_zh`, `digits_zh`, `number_to_zh`, and the 两/二 choice in
`quantity_zh`) and the constant tables the rules in `broadcast.audio.normalize` consult: digits, units,
number patterns, abbreviations, phone cues, service numbers, Roman and circled numerals (public: the
rules read them; private ones are this module's own).

It must never hold rewriting rules or the normalisation pipeline (those live in `broadcast.audio.normalize`),
never do I/O, read the clock, or depend on the rest of the product.
"""

from __future__ import annotations

import re

DIGITS = "零一二三四五六七八九"
_DIGITS_YAO = "零幺二三四五六七八九"

# Counting words after which a bare 2 is read 两 (两小时, 两天); anything else keeps 二 (二级, 二日, 二号).
_COUNTERS = (
    "个", "小时", "天", "次", "人", "名", "辆", "座", "条", "处", "户", "周", "倍", "艘", "架", "所", "家",
    "台", "种", "位", "只", "批", "轮", "场", "分钟", "秒钟", "公里", "千米", "米", "吨",
)  # fmt: skip

_FULLWIDTH = {chr(0xFF10 + i): str(i) for i in range(10)}
_FULLWIDTH.update({chr(0xFF21 + i): chr(0x41 + i) for i in range(26)})
_FULLWIDTH.update({chr(0xFF41 + i): chr(0x61 + i) for i in range(26)})
_FULLWIDTH.update(
    {
        "％": "%",
        "～": "~",
        "〜": "~",
        "－": "-",
        "−": "-",
        "‐": "-",
        "‑": "-",
        "／": "/",
        "＋": "+",
        "＜": "<",
        "＞": ">",
        "＝": "=",
        "\u3000": " ",
        "\u00a0": " ",
        "µ": "μ",
    }
)
FULLWIDTH_TABLE = str.maketrans(_FULLWIDTH)

ROMAN = {
    "Ⅰ": 1, "Ⅱ": 2, "Ⅲ": 3, "Ⅳ": 4, "Ⅴ": 5, "Ⅵ": 6, "Ⅶ": 7, "Ⅷ": 8, "Ⅸ": 9, "Ⅹ": 10, "Ⅺ": 11, "Ⅻ": 12,
    "ⅰ": 1, "ⅱ": 2, "ⅲ": 3, "ⅳ": 4, "ⅴ": 5, "ⅵ": 6, "ⅶ": 7, "ⅷ": 8, "ⅸ": 9, "ⅹ": 10,
}  # fmt: skip
ASCII_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5}
CIRCLED = {chr(0x2460 + i): i + 1 for i in range(20)}  # ① … ⑳

# Written unit → spoken unit; "%" and "‰" are prefixes and handled apart. Longest spellings first.
_UNITS: tuple[tuple[str, str], ...] = (
    ("km/h", "千米每小时"),
    ("km/小时", "千米每小时"),
    ("千米/小时", "千米每小时"),
    ("公里/小时", "公里每小时"),
    ("m³/s", "立方米每秒"),
    ("m3/s", "立方米每秒"),
    ("立方米/秒", "立方米每秒"),
    ("m/s", "米每秒"),
    ("米/秒", "米每秒"),
    ("mm/h", "毫米每小时"),
    ("毫米/小时", "毫米每小时"),
    ("μg/m³", "微克每立方米"),
    ("μg/m3", "微克每立方米"),
    ("ug/m³", "微克每立方米"),
    ("ug/m3", "微克每立方米"),
    ("mg/m³", "毫克每立方米"),
    ("mg/m3", "毫克每立方米"),
    ("km²", "平方千米"),
    ("km2", "平方千米"),
    ("m²", "平方米"),
    ("m³", "立方米"),
    ("hPa", "百帕"),
    ("kPa", "千帕"),
    ("MPa", "兆帕"),
    ("MHz", "兆赫"),
    ("kHz", "千赫"),
    ("min", "分钟"),
    ("mm", "毫米"),
    ("cm", "厘米"),
    ("km", "千米"),
    ("kg", "千克"),
    ("kV", "千伏"),
    ("kW", "千瓦"),
    ("dB", "分贝"),
    ("°C", "摄氏度"),
    ("° C", "摄氏度"),
    ("℃", "摄氏度"),
    ("°F", "华氏度"),
    ("℉", "华氏度"),
    ("°", "度"),
    ("m", "米"),
    ("h", "小时"),
    ("s", "秒"),
    ("t", "吨"),
    ("%", ""),
    ("‰", ""),
)
UNIT_WORD = dict(_UNITS)
TEMPERATURE_UNITS = frozenset({"°C", "° C", "℃", "°F", "℉"})
_UNIT_ALT = "|".join(re.escape(u) for u, _ in _UNITS)
# An ASCII unit must not run on into more letters ("5min" is not "5m"+"in"); Hanzi/symbol units may.
UNIT_RE = rf"(?:{_UNIT_ALT})(?![A-Za-z])"

# Single Hanzi units allowed after the first number of a range: "20时-23时", "22日—23日".
RANGE_CJK_UNIT = "时日月天年点号级度分秒米"

NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
SIGN = r"(?:(?<![\dA-Za-z)）])-)"
RANGE_SEP = r"\s*(?:~|-|–|—(?!—))\s*"

# Abbreviations whose digits are part of a name. Read as a Chinese listener expects.
ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("PM2.5", "PM二点五"),
    ("PM10", "PM十"),
    ("PM1", "PM一"),
    ("NO2", "二氧化氮"),
    ("SO2", "二氧化硫"),
    ("CO2", "二氧化碳"),
    ("O3", "臭氧"),
    ("5G", "五G"),
    ("4G", "四G"),
)

PHONE_CUES = (
    "拨打",
    "拨",
    "打",
    "电话",
    "热线",
    "致电",
    "联系",
    "求助",
    "求救",
    "呼叫",
    "号码",
    "Tel",
    "TEL",
    "tel",
)
PHONE_AFTER_CUES = ("报警", "火警", "急救", "求助", "求救", "电话", "热线", "指挥中心", "平台", "预警")
# Public service numbers. Five-digit 12xxx lines are never quantities in warnings; the three-digit ones
# (110 …) only count as phone numbers next to a phone word, since "120毫米" is a quantity.
SERVICE_LONG = frozenset(
    {"12379", "12345", "12315", "12320", "12121", "12110", "12119", "12122", "12369", "12395", "12348",
     "12350", "12355", "12356", "12358", "12365", "12366", "12306", "12328", "12338", "12333", "96121"}
)  # fmt: skip
SERVICE_SHORT = frozenset({"110", "119", "120", "122", "999"})
PHONE_LIST_GAP = re.compile(r"^\s*(?:、|或|和|及|/|,|，|或者|以及)?\s*(?:拨打)?\s*$")


def int_to_zh(n: int) -> str:
    """Read a whole number as a value: 1200 → 一千二百, 20500 → 两万零五百, -5 → 负五."""
    if n < 0:
        return "负" + int_to_zh(-n)
    if n == 0:
        return "零"
    if n >= 10**16:
        return digits_zh(str(n))
    sections: list[int] = []
    m = n
    while m:
        sections.append(m % 10000)
        m //= 10000
    big_units = ("", "万", "亿", "万亿")
    out = ""
    pending_zero = False
    for i in reversed(range(len(sections))):
        s = sections[i]
        if s == 0:
            pending_zero = bool(out)
            continue
        if out and (pending_zero or s < 1000):
            out += "零"
        out += _section_zh(s) + big_units[i]
        pending_zero = False
    if out.startswith("一十"):
        out = out[1:]
    if out[:2] in ("二千", "二万", "二亿"):
        out = "两" + out[1:]
    return out


def _section_zh(n: int) -> str:
    parts: list[str] = []
    zero = False
    for place, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // place % 10
        if d == 0:
            zero = bool(parts)
            continue
        if zero:
            parts.append("零")
            zero = False
        parts.append(DIGITS[d] + unit)
    return "".join(parts)


def digits_zh(digits: str, *, yao: bool = False) -> str:
    """Read digit by digit: "2026" → 二零二六; with yao=True (phone numbers) 1 is 幺: "110" → 幺幺零."""
    table = _DIGITS_YAO if yao else DIGITS
    return "".join(table[int(c)] if c.isdigit() else c for c in digits)


def number_to_zh(written: str) -> str:
    """Read a written number with optional thousands separators and decimals: "12.5" → 十二点五."""
    whole, _, frac = written.replace(",", "").partition(".")
    spoken = int_to_zh(int(whole))
    if frac:
        spoken += "点" + digits_zh(frac)
    return spoken


def quantity_zh(written: str, *, following: str = "", ordinal: bool = False) -> str:
    spoken = number_to_zh(written)
    if spoken == "二" and not ordinal and following.startswith(_COUNTERS):
        return "两"
    return spoken

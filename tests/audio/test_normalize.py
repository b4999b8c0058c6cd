"""Tests for broadcast.audio.normalize: written warning text → Hanzi that a Mandarin TTS engine reads."""

from __future__ import annotations

import re

import pytest

from broadcast.audio.normalize import normalise_for_speech
from broadcast.audio.normalize_lexicon import digits_zh, int_to_zh, number_to_zh

# (category, written, spoken) — phrases in the style of CMA / emergency-management warnings.
CASES: list[tuple[str, str, str]] = [
    # dates and times
    ("date", "2026年11月22日10时30分", "二零二六年十一月二十二日十时三十分"),
    ("date", "22日夜间", "二十二日夜间"),
    ("date", "10:30", "十点三十分"),
    ("date", "08时", "八时"),
    ("date", "预计22日20时至23日08时", "预计二十二日二十时至二十三日八时"),
    ("date", "08时00分发布", "八时发布"),
    ("date", "10时05分", "十时零五分"),
    ("date", "2026-11-22 10:30", "二零二六年十一月二十二日十点三十分"),
    ("date", "时间：2026/11/22", "时间：二零二六年十一月二十二日"),
    ("date", "10:30-12:00停电", "十点三十分到十二点停电"),
    ("date", "20时-23时", "二十时到二十三时"),
    ("date", "22日—23日", "二十二日到二十三日"),
    ("date", "１０：３０", "十点三十分"),
    ("date", "今天14:05:30", "今天十四点零五分三十秒"),
    # numbers with units
    ("unit", "78mm", "七十八毫米"),
    ("unit", "78毫米", "七十八毫米"),
    ("unit", "35℃", "三十五摄氏度"),
    ("unit", "35°C", "三十五摄氏度"),
    ("unit", "最低气温-5℃", "最低气温零下五摄氏度"),
    ("unit", "风速12.5m/s", "风速十二点五米每秒"),
    ("unit", "最大风速达120km/h", "最大风速达一百二十千米每小时"),
    ("unit", "偏北风8级", "偏北风八级"),
    ("unit", "距离安宁市约100km", "距离安宁市约一百千米"),
    ("unit", "积雪深度达15cm", "积雪深度达十五厘米"),
    ("unit", "中心气压985hPa", "中心气压九百八十五百帕"),
    ("unit", "能见度小于200m", "能见度小于二百米"),
    ("unit", "24h降雨量", "二十四小时降雨量"),
    ("unit", "提前15min", "提前十五分钟"),
    ("unit", "风速（m/s）", "风速（米每秒）"),
    ("unit", "入库流量1200m³/s", "入库流量一千二百立方米每秒"),
    ("unit", "浓度达150μg/m³", "浓度达一百五十微克每立方米"),
    # grades
    ("grade", "Ⅰ级", "一级"),
    ("grade", "Ⅱ级应急响应", "二级应急响应"),
    ("grade", "Ⅲ级", "三级"),
    ("grade", "Ⅳ级", "四级"),
    ("grade", "[Ⅲ级/较重]", "三级，较重"),
    ("grade", "更新雷电黄色预警[Ⅲ级/较重]", "更新雷电黄色预警，三级，较重"),
    ("grade", "暴雨红色预警（Ⅰ级/特别重大）", "暴雨红色预警，一级，特别重大"),
    ("grade", "启动IV级响应", "启动四级响应"),
    # ranges
    ("range", "24-48小时", "二十四到四十八小时"),
    ("range", "3~5天", "三到五天"),
    ("range", "50—100毫米", "五十到一百毫米"),
    ("range", "阵风10-12级", "阵风十到十二级"),
    ("range", "风力6～7级", "风力六到七级"),
    ("range", "气温-5～-3℃", "气温零下五到零下三摄氏度"),
    ("range", "最高气温35-37℃", "最高气温三十五到三十七摄氏度"),
    ("range", "累计雨量50mm-100mm", "累计雨量五十到一百毫米"),
    ("range", "风速17.2m/s-20.7m/s", "风速十七点二到二十点七米每秒"),
    ("range", "1-2天", "一到两天"),
    ("range", "2025-2026年", "二零二五到二零二六年"),
    # percentages and comparisons
    ("percent", "相对湿度85%", "相对湿度百分之八十五"),
    ("percent", "相对湿度60%-80%", "相对湿度百分之六十到百分之八十"),
    ("percent", "增加12.5％", "增加百分之十二点五"),
    ("percent", "占全县面积的1/3", "占全县面积的三分之一"),
    ("percent", "≥50毫米", "大于等于五十毫米"),
    # decimals and large numbers
    ("number", "12.5", "十二点五"),
    ("number", "0.5米", "零点五米"),
    ("number", "1,200", "一千二百"),
    ("number", "10000", "一万"),
    ("number", "20500", "两万零五百"),
    ("number", "转移群众3000余人", "转移群众三千余人"),
    ("number", "受影响人口1.5万人", "受影响人口一点五万人"),
    ("number", "库容1.2亿立方米", "库容一点二亿立方米"),
    ("number", "110千伏线路", "一百一十千伏线路"),
    ("number", "120人", "一百二十人"),
    ("number", "共2个安置点", "共两个安置点"),
    ("number", "第2个", "第二个"),
    ("number", "2级", "二级"),
    ("number", "100年一遇", "一百年一遇"),
    # phone numbers and codes, digit by digit with 幺
    ("phone", "通过12379发布", "通过幺二三七九发布"),
    ("phone", "咨询电话：0871-68123456", "咨询电话：零八七幺 六八幺二三四五六"),
    ("phone", "请拨打110、119、120求助", "请拨打幺幺零、幺幺九、幺二零求助"),
    ("phone", "报警请拨110", "报警请拨幺幺零"),
    ("phone", "120急救", "幺二零急救"),
    ("phone", "联系电话：13812345678", "联系电话：幺三八幺二三四五六七八"),
    ("phone", "服务热线：12345", "服务热线：幺二三四五"),
    # years, typhoon and road numbers, digit by digit
    ("code", "２０２６年", "二零二六年"),
    ("code", "第2305号台风", "第二三零五号台风"),
    ("code", "G320国道", "G三二零国道"),
    ("code", "第7号台风“杜苏芮”（2305）", "第七号台风“杜苏芮”（二三零五）"),
    ("code", "请关注12121天气热线", "请关注幺二幺二幺天气热线"),
    ("code", "见第1.2.3条", "见第一点二点三条"),
    ("code", "K12+300处", "K十二加三百处"),
    ("code", "编号007", "编号零零七"),
    # list markers
    (
        "list",
        "防御指南：1.政府及相关部门做好防暴雨工作；2.切断危险电源",
        "防御指南：第一，政府及相关部门做好防暴雨工作；第二，切断危险电源",
    ),
    ("list", "（1）加强巡查；（2）转移群众", "第一，加强巡查；第二，转移群众"),
    ("list", "①加强巡查②转移群众", "第一，加强巡查，第二，转移群众"),
    ("list", "1、停止户外作业", "第一，停止户外作业"),
    # coordinates
    ("coordinate", "北纬24.91°，东经102.48°", "北纬二十四点九一度，东经一百零二点四八度"),
    ("coordinate", "24.91°N", "北纬二十四点九一度"),
    ("coordinate", "102°28′E", "东经一百零二度二十八分"),
    ("coordinate", "震中位于北纬24.9度、东经102.5度", "震中位于北纬二十四点九度、东经一百零二点五度"),
    # place names untouched
    ("place", "安宁市连然街道、八街街道、县街街道、禄脿街道", "安宁市连然街道、八街街道、县街街道、禄脿街道"),
    ("place", "八街街道3个村", "八街街道三个村"),
    ("place", "太平新城街道", "太平新城街道"),
    # English abbreviations
    ("abbrev", "PM2.5浓度", "PM二点五浓度"),
    ("abbrev", "PM10", "PM十"),
    ("abbrev", "O3浓度", "臭氧浓度"),
    ("abbrev", "AQI为150", "AQI为一百五十"),
    # full-width characters and punctuation
    ("fullwidth", "降雨量达１００毫米", "降雨量达一百毫米"),
    ("fullwidth", "（１）加强防范", "第一，加强防范"),
    ("fullwidth", "请注意防范,注意安全!", "请注意防范，注意安全！"),
    ("fullwidth", "１２．５", "十二点五"),
    # a whole warning
    (
        "warning",
        "安宁市气象台2026年11月22日08时15分发布暴雨橙色预警信号：预计未来3小时内，八街街道、县街街道"
        "降雨量将达50毫米以上，局地可达100mm。",
        "安宁市气象台二零二六年十一月二十二日八时十五分发布暴雨橙色预警信号：预计未来三小时内，八街街道、县街街道"
        "降雨量将达五十毫米以上，局地可达一百毫米。",
    ),
]

PLACE_NAMES = (
    "安宁市",
    "连然街道",
    "八街街道",
    "县街街道",
    "禄脿街道",
    "太平新城街道",
    "青龙街道",
    "草铺街道",
)
ASCII_DIGIT = re.compile(r"[0-9]")


def test_table_has_every_category_and_enough_phrases() -> None:
    categories = {c for c, _, _ in CASES}
    assert len(CASES) >= 60
    assert {"date", "unit", "grade", "range", "percent", "number", "phone", "code", "list"} <= categories
    assert {"coordinate", "place", "abbrev", "fullwidth"} <= categories


@pytest.mark.parametrize(("category", "written", "spoken"), CASES, ids=[f"{c}-{w[:12]}" for c, w, _ in CASES])
def test_phrase(category: str, written: str, spoken: str) -> None:
    assert normalise_for_speech(written) == spoken


@pytest.mark.parametrize("written", [w for _, w, _ in CASES] + [s for _, _, s in CASES])
def test_output_has_no_ascii_digits_and_is_idempotent(written: str) -> None:
    once = normalise_for_speech(written)
    assert not ASCII_DIGIT.search(once), once
    assert normalise_for_speech(once) == once


@pytest.mark.parametrize("place", PLACE_NAMES)
def test_place_names_survive_in_any_context(place: str) -> None:
    for written in (place, f"{place}8级大风", f"1.{place}注意防范", f"{place}降雨量达50mm", f"（2）{place}"):
        assert place in normalise_for_speech(written), written


def test_every_hanzi_of_the_input_is_kept() -> None:
    # The normaliser only rewrites digits and symbols; it may add Hanzi but removes none, except the
    # number syntax it re-reads: 分 of a zero minute (08时00分 → 八时) and 至 of a clock range (→ 到).
    number_syntax = set("分至")
    for _, written, _ in CASES:
        spoken = normalise_for_speech(written)
        pos = 0
        for ch in written:
            if "\u4e00" <= ch <= "\u9fff" and ch not in number_syntax:
                found = spoken.find(ch, pos)
                assert found >= 0, (written, ch)
                pos = found + 1


@pytest.mark.parametrize(
    ("n", "spoken"),
    [
        (0, "零"),
        (10, "十"),
        (15, "十五"),
        (20, "二十"),
        (101, "一百零一"),
        (110, "一百一十"),
        (1010, "一千零一十"),
        (2000, "两千"),
        (100000, "十万"),
        (110000, "十一万"),
        (1000001, "一百万零一"),
        (100010000, "一亿零一万"),
        (-5, "负五"),
    ],
)
def test_int_to_zh(n: int, spoken: str) -> None:
    assert int_to_zh(n) == spoken


def test_int_to_zh_round_trips_through_a_reader() -> None:
    # An independent reader of Chinese numerals: every number up to 10^8 we sample reads back to itself.
    values = {
        "零": 0,
        "一": 1,
        "两": 2,
        "二": 2,
        "三": 3,
        "四": 4,
        "五": 5,
        "六": 6,
        "七": 7,
        "八": 8,
        "九": 9,
    }
    units = {"十": 10, "百": 100, "千": 1000}

    def read(text: str) -> int:
        total = section = digit = 0
        for ch in text:
            if ch in values:
                digit = values[ch]
            elif ch in units:
                section += (digit or 1) * units[ch]
                digit = 0
            elif ch == "万":
                total += (section + digit) * 10_000
                section = digit = 0
            elif ch == "亿":
                total = (total + section + digit) * 100_000_000
                section = digit = 0
        return total + section + digit

    for n in [*range(0, 2100, 7), 9999, 10001, 20500, 123456, 1000000, 10203040, 99999999]:
        assert read(int_to_zh(n)) == n, (n, int_to_zh(n))


def test_digit_readings() -> None:
    assert digits_zh("2026") == "二零二六"
    assert digits_zh("110", yao=True) == "幺幺零"
    assert number_to_zh("1,234.05") == "一千二百三十四点零五"

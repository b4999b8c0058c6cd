"""Report writers: Chinese HTML pages with inline SVG charts, CSV tables and JSON, from report dicts.

Owns presentation only (labels, tables, charts, file formats). Must never compute a figure: every
number shown comes from the dict built by effect.py, health.py or drill.py.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from broadcast.reports import svg

STATUS_ZH = {
    "queued": "排队中",
    "sent": "已下发",
    "acknowledged": "已应答",
    "playing": "播放中",
    "played": "已播完",
    "failed": "失败",
    "offline": "离线",
    "cancelled": "已取消",
}
REASON_ZH = {
    "not_connected": "终端未连接",
    "no_ack": "无应答",
    "rejected": "终端拒绝",
    "playback_failed": "播放失败",
    "bad_report": "回传异常",
    "link_lost": "播出中断线",
    "expired": "消息过期",
    "cancelled": "已取消",
    "preempted": "被高优先级抢占",
    "failed": "失败（未注明原因）",
    "offline": "离线（未注明原因）",
}
STATE_ZH = {
    "received": "已接收",
    "pending_approval": "待审批",
    "rejected": "已驳回",
    "rendering": "生成音频中",
    "broadcasting": "播发中",
    "completed": "已完成",
    "cancelled": "已取消",
    "expired": "已过期",
    "failed": "失败",
}
MSG_TYPE_ZH = {1: "实际播发", 2: "取消播发", 3: "平台演练", 4: "前端演练", 5: "终端演练"}

_STYLE = """
body{font-family:'WenQuanYi Micro Hei','Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f0f4f8}td.n{text-align:right}.muted{color:#777;font-size:12px}.bad{color:#c0392b}
"""


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.2f}%"


def _floor_tenth(v: float) -> float:
    """Lower end of a rate axis: the tenth at or below the lowest value (99.1 % → 90 %)."""
    return min(0.9, int(v * 10) / 10)


def _num(v: Any) -> str:
    return "—" if v is None else str(v)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="n">{escape(str(c))}</td>' if i >= numeric_from else f"<td>{escape(str(c))}</td>"
            for i, c in enumerate(r)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="muted">无</td></tr>')
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _page(title: str, parts: Sequence[str]) -> str:
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{''.join(parts)}</body></html>\n"
    )


def _area_rows(items: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    return [
        [
            a["name"],
            a["code"],
            a["targeted"],
            a["played"],
            a["on_air"],
            a["failed"],
            a["never_answered"],
            _pct(a["coverage"]),
        ]
        for a in items
    ]


def effect_html(report: Mapping[str, Any]) -> str:
    b = report["broadcast"]
    cov = report["coverage"]
    tta = report["time_to_air"]
    streets = report["by_area"]["street"]
    parts = [
        f"<p>广播 {b['id']}（EBM {escape(b['ebm_id'])}）：{escape(b['title'])}；"
        f"类型：{escape(MSG_TYPE_ZH.get(b['msg_type'], str(b['msg_type'])))}；"
        f"接收时间：{escape(b['received_at_local'])}（北京时间）；状态：{escape(STATE_ZH.get(b['state'], b['state']))}</p>",
        "<h2>总体效果</h2>",
        _table(
            ["指标", "数值"],
            [
                ["目标终端数", report["targeted"]],
                ["播完终端数", cov["played"]],
                ["已开播终端数", cov["on_air"]],
                ["覆盖率（播完/目标）", _pct(cov["rate"])],
                ["未应答终端数", len(report["never_answered"])],
            ],
        ),
        "<h2>到播时延（开播时间 − 接收时间，单位：秒）</h2>",
        _table(
            ["样本数", "最小", "P50", "P90", "P95", "P99", "平均", "最大"],
            [
                [
                    tta["count"],
                    *(_num(tta[k]) for k in ("min_s", "p50_s", "p90_s", "p95_s", "p99_s", "mean_s", "max_s")),
                ]
            ],
            numeric_from=0,
        ),
        svg.histogram(report["time_to_air_values_s"], title="到播时延分布"),
        "<h2>各街道覆盖率</h2>",
        svg.bar_chart([(a["name"], a["coverage"]) for a in streets], title="各街道覆盖率", warn_below=0.9),
        _table(
            ["区域", "代码", "目标", "播完", "已开播", "失败", "未应答", "覆盖率"], _area_rows(streets), 2
        ),
        "<h2>各村/社区覆盖率</h2>",
        _table(
            ["区域", "代码", "目标", "播完", "已开播", "失败", "未应答", "覆盖率"],
            _area_rows(report["by_area"]["village"]),
            2,
        ),
        "<h2>失败原因</h2>",
        _table(["原因", "终端数"], [[REASON_ZH.get(k, k), v] for k, v in report["failures"].items()]),
        "<h2>各街道失败原因</h2>",
        _table(
            ["街道代码", "原因", "终端数"],
            [
                [street, REASON_ZH.get(k, k), v]
                for street, per in report["failures_by_street"].items()
                for k, v in per.items()
            ],
            2,
        ),
        "<h2>未应答终端</h2>",
        _table(
            ["资源编码", "名称", "区域", "状态", "下发次数"],
            [
                [
                    s["terminal_code"],
                    s["name"],
                    s["area"],
                    STATUS_ZH.get(s["status"], s["status"]),
                    s["attempts"],
                ]
                for s in report["never_answered"]
            ],
            4,
        ),
    ]
    return _page(f"应急广播效果评估报告 — 广播 {b['id']}", parts)


def health_html(report: Mapping[str, Any]) -> str:
    p = report["period"]
    c = report["county"]
    kind = "月报" if p["kind"] == "month" else "日报"
    parts = [
        f"<p>{escape(c['name'])}，统计期 {escape(p['first'])} 至 {escape(p['last'])}（北京时间），"
        f"统计截至 {escape(str(p['until'])[:16].replace('T', ' '))}。在线 = 链路状态为在线或播出中；在线率 = 在线时长 / 统计时长。</p>",
        "<h2>全县概况</h2>",
        _table(
            ["终端数", "在线率", "故障次数", "全天离线（终端·天）", "长期离线终端"],
            [
                [
                    c["terminals"],
                    _pct(c["online_rate"]),
                    c["faults"],
                    c["down_terminal_days"],
                    len({x["terminal_code"] for x in report["chronic_offline"]}),
                ]
            ],
            numeric_from=0,
        ),
        svg.line_chart(
            [(d["day"][5:], d["online_rate"]) for d in report["per_day"]],
            title="每日在线率趋势",
            y_min=_floor_tenth(min((d["online_rate"] for d in report["per_day"]), default=0.0)),
        ),
        _table(
            ["日期", "在线率", "故障次数", "全天离线终端"],
            [
                [d["day"], _pct(d["online_rate"]), d["faults"], d["down_terminal_days"]]
                for d in report["per_day"]
            ],
        ),
        "<h2>各街道在线率</h2>",
        svg.bar_chart(
            [(s["name"], s["online_rate"]) for s in report["streets"]], title="各街道在线率", warn_below=0.95
        ),
        _table(
            ["街道", "终端数", "在线率", "故障次数", "全天离线（终端·天）"],
            [
                [s["name"], s["terminals"], _pct(s["online_rate"]), s["faults"], s["down_terminal_days"]]
                for s in report["streets"]
            ],
        ),
        f"<h2>长期离线终端（连续离线 ≥ {report['chronic_days']:g} 天）</h2>",
        _table(
            ["资源编码", "名称", "街道", "村/社区", "离线起始", "恢复时间", "离线天数"],
            [
                [
                    x["terminal_code"],
                    x["name"],
                    x["street"],
                    x["village"],
                    (x["since"] or "") + ("" if x["since_known"] else "（之前无记录）"),
                    x["until"] or "仍离线",
                    x["days_offline"],
                ]
                for x in report["chronic_offline"]
            ],
            6,
        ),
        "<h2>各村/社区在线率</h2>",
        _table(
            ["村/社区", "所属街道", "终端数", "在线率", "故障次数"],
            [
                [v["name"], v["street"], v["terminals"], _pct(v["online_rate"]), v["faults"]]
                for v in report["villages"]
            ],
            2,
        ),
    ]
    return _page(f"终端运维{kind} — {p['label']}", parts)


def drill_html(report: Mapping[str, Any]) -> str:
    runs = report["runs"]
    parts = [
        f"<p>演练 {escape(report['drill_id'])}：共 {len(runs)} 次计划，其中错过 {report['missed']} 次。</p>",
        svg.line_chart(
            [(r["slot_local"][:10], r["coverage"] or 0.0) for r in runs if r["broadcast_id"]],
            title="历次演练覆盖率",
        ),
        _table(
            [
                "计划时间",
                "结果",
                "广播",
                "目标",
                "播完",
                "覆盖率",
                "到播 P50（秒）",
                "到播 P95（秒）",
                "较上次覆盖率",
            ],
            [
                [
                    r["slot_local"],
                    r["outcome_zh"],
                    _num(r["broadcast_id"]),
                    _num(r["targeted"]),
                    _num(r["played"]),
                    _pct(r["coverage"]),
                    _num(r["p50_s"]),
                    _num(r["p95_s"]),
                    "—" if r["coverage_change"] is None else f"{r['coverage_change'] * 100:+.2f} 个百分点",
                ]
                for r in runs
            ],
            2,
        ),
    ]
    return _page(f"系统演练报告 — {report['drill_id']}", parts)


def to_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n"


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV with a header; columns default to the first row's keys. UTF-8 with BOM for spreadsheet tools."""
    cols = list(columns or (rows[0].keys() if rows else []))
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r.get(k) for k in cols})
    return buf.getvalue()


def effect_tables(report: Mapping[str, Any]) -> dict[str, str]:
    """CSV files of an effect report: coverage per area (all levels) and the never-answered terminals."""
    areas = [dict(a, level_group=level) for level, items in report["by_area"].items() for a in items]
    return {
        "coverage.csv": to_csv(
            areas,
            [
                "level_group",
                "code",
                "name",
                "targeted",
                "played",
                "on_air",
                "failed",
                "never_answered",
                "coverage",
            ],
        ),
        "never_answered.csv": to_csv(
            report["never_answered"],
            ["terminal_code", "name", "area_code", "area", "status", "reason", "attempts"],
        ),
    }


def health_tables(report: Mapping[str, Any]) -> dict[str, str]:
    return {
        "terminals.csv": to_csv(report["terminals"]),
        "days.csv": to_csv(report["per_day"]),
        "streets.csv": to_csv(report["streets"]),
        "villages.csv": to_csv(report["villages"]),
        "chronic_offline.csv": to_csv(
            report["chronic_offline"],
            [
                "terminal_code",
                "name",
                "street",
                "village",
                "since",
                "since_known",
                "until",
                "ongoing",
                "days_offline",
                "seconds_offline",
            ],
        ),
    }


def write_bundle(
    directory: Path, stem: str, report: Mapping[str, Any], html: str, tables: Mapping[str, str]
) -> list[Path]:
    """Write ``stem.html``, ``stem.json`` and ``stem-<table>.csv`` into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / f"{stem}.html", directory / f"{stem}.json"]
    written[0].write_text(html, encoding="utf-8")
    written[1].write_text(to_json(report), encoding="utf-8")
    for name, text in tables.items():
        path = directory / f"{stem}-{name}"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written

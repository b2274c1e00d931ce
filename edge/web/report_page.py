"""The shift report as one self-contained HTML page: Chinese and English side by side, charts inline."""
from datetime import datetime
from html import escape

from . import charts
from .i18n import REASONS, TEXT

STAGES = {"image_ms": '等待图像 <span class="en">image wait</span>',
          "read_ms": '面单识别 <span class="en">label reading</span>',
          "decide_ms": '格口决策 <span class="en">routing</span>'}

STYLE = """
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "DejaVu Sans", sans-serif;
       margin: 24px auto; max-width: 980px; color: #1c2329; }
h1 { font-size: 28px; margin-bottom: 4px; } h2 { font-size: 20px; margin-top: 32px; border-bottom: 2px solid #ccd3da; }
.en { color: #5a6670; font-weight: normal; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 4px 12px; border-bottom: 1px solid #e1e6ea; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.kpis { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; }
.kpi { border: 1px solid #ccd3da; border-radius: 8px; padding: 10px; } .kpi b { display: block; font-size: 28px; }
.remedy { color: #5a6670; font-size: 14px; }
@media print { h2 { break-after: avoid; } svg { break-inside: avoid; } }
"""


def _h(key: str) -> str:
    zh, en = TEXT[key]
    return f'{escape(zh)} <span class="en">{escape(en)}</span>'


def _reason(name: str) -> str:
    if name == "UNCONFIRMED":
        return "未确认 Unconfirmed"
    if name.startswith("PLC_"):         # confirmed by the PLC but never decided (a controller restart)
        return "未决策 Undecided: " + _reason(name[4:])
    label = REASONS.get(name, ((name, name), None))[0]
    return f"{label[0]} {label[1]}"


def _action(name: str) -> str:
    zh, en = TEXT.get("act:" + name, ("", name))
    return f"{zh} {en}".strip()


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _ms(x) -> str:
    return "—" if x is None else f"{x:.1f} ms" if x < 10 else f"{x:.0f} ms"


def _local(wall: float, fmt="%Y-%m-%d %H:%M") -> str:
    return datetime.fromtimestamp(wall).strftime(fmt)


def render_report(shift, line_name: str = "", budget_ms: float | None = None, no_courier: str = "") -> str:
    """`no_courier`: the per-courier key of parcels whose waybill told no courier."""
    n = len(shift.parcels)
    period = f"{_local(shift.start_wall)} – {_local(shift.end_wall)}"
    parts = [f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{_h("report_title")} '
             f'{escape(line_name)} {escape(period)}</title><style>{STYLE}</style></head><body>',
             f"<h1>{_h('report_title')}: {escape(line_name)}</h1>",
             f"<p>{_h('period')}: {escape(period)} · {_h('plan')}: {escape(', '.join(shift.plan_versions) or '—')}"
             f" · 生成 <span class=\"en\">made</span> {escape(datetime.now().strftime('%Y-%m-%d %H:%M'))}</p>"]
    if not n:
        parts.append(f"<p><b>{_h('no_parcels')}</b></p>")
    rejects = shift.rejects
    parts.append('<div class="kpis">' + "".join(
        f'<div class="kpi">{_h(k)}<b>{escape(v)}</b></div>' for k, v in (
            ("parcels", str(n)),
            ("read_rate", _pct(shift.read / n if n else None)),
            ("sort_rate", _pct(shift.sorted / n if n else None)),
            ("rejects", str(sum(rejects.values())))))
        + "</div>")
    labels = [b.start.strftime("%H:%M") for b in shift.buckets]
    parts.append(f"<h2>{_h('throughput_15')}</h2>")
    parts.append(charts.columns(labels, [b.parcels for b in shift.buckets], fmt=lambda v: f"{v:.0f}",
                                title=TEXT["throughput_15"][1]))
    parts.append(f"<h2>{_h('read_rate_15')}</h2>")
    filled = [b for b in shift.buckets if b.parcels]
    parts.append(charts.columns([b.start.strftime("%H:%M") for b in filled], [b.read / b.parcels for b in filled],
                                fmt=lambda v: f"{100 * v:.1f}%", ymax=1.0, color="#2e9d57",
                                title=TEXT["read_rate_15"][1]))
    parts.append(f"<h2>{_h('rejects')}</h2>")
    if rejects:
        parts.append(charts.rows([_reason(r) for r in rejects], list(rejects.values()), fmt=lambda v: f"{v:.0f}",
                                 title=TEXT["rejects"][1]))
        parts.append("<table>" + "".join(
            f'<tr><td>{escape(_reason(r))}</td><td class="n">{c}</td><td class="remedy">'
            f'{escape(" / ".join(REASONS[r][1]) if r in REASONS and REASONS[r][1] else "")}</td></tr>'
            for r, c in rejects.items()) + "</table>")
    else:
        parts.append(f"<p>{_h('no_rejects')}</p>")
    if shift.outcomes.get("UNCONFIRMED"):
        parts.append(f"<p>{escape(_reason('UNCONFIRMED'))}: {shift.outcomes['UNCONFIRMED']}</p>")
    parts.append(f"<h2>{_h('per_chute')}</h2>")
    parts.append(charts.columns([str(c) for c in shift.per_chute], list(shift.per_chute.values()),
                                fmt=lambda v: f"{v:.0f}", title=TEXT["per_chute"][1], label_px=24))
    parts.append(f"<h2>{_h('per_courier')}</h2>")
    parts.append(_per_courier_table(shift.per_courier, no_courier))
    parts.append(f"<h2>{_h('latency_pct')}</h2>")
    lat = {k: v for k, v in shift.latency_ms.items() if v is not None}
    parts.append(charts.columns(list(lat), list(lat.values()), fmt=lambda v: f"{v:.0f} ms", color="#6a4fb0",
                                hline=(budget_ms, f"预算 budget {budget_ms:.0f} ms") if budget_ms else None,
                                title=TEXT["latency_pct"][1], width=600))
    parts.append("<table><tr><th></th>" + "".join(f"<th>{STAGES[k]}</th>" for k in shift.stage_median_ms)
                 + "</tr><tr><td>中位数 <span class=\"en\">median</span></td>"
                 + "".join(f'<td class="n">{_ms(v)}</td>' for v in shift.stage_median_ms.values())
                 + "</tr></table>")
    parts.append(f"<h2>{_h('actions')}</h2>")
    if shift.actions:
        parts.append(f"<table><tr><th>{_h('when')}</th><th>{_h('who')}</th><th>{_h('what')}</th></tr>" + "".join(
            f"<tr><td>{escape(_local(a['at_wall'], '%H:%M:%S'))}</td><td>{escape(a['who'])}</td>"
            f"<td>{escape(_action(a['action']))} {escape(a['detail'] or '')}</td></tr>" for a in shift.actions) + "</table>")
    else:
        parts.append("<p>—</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _per_courier_table(per_courier: dict, no_courier: str) -> str:
    """What each courier's parcels were and weighed: what the center settles with it."""
    columns = ("parcels", "weighed", "weight_kg", "mean_kg", "volume_l", "overweight", "oversize")
    head = f"<tr><th>{_h('courier')}</th>" + "".join(f"<th>{_h(k)}</th>" for k in columns) + "</tr>"
    rows = []
    for name, c in per_courier.items():
        cells = (c.parcels, c.weighed, f"{c.weight_kg:.2f}", "—" if c.mean_kg is None else f"{c.mean_kg:.2f}",
                 f"{c.volume_l:.1f}", c.overweight, c.oversize)
        label = _h("no_courier") if name == no_courier else escape(name)
        rows.append(f'<tr class="courier"><td>{label}</td>' + "".join(f'<td class="n">{v}</td>' for v in cells)
                    + "</tr>")
    return f'<table class="couriers">{head}{"".join(rows)}</table>' if rows else "<p>—</p>"

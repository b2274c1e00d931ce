"""Charts as inline SVG: the line PC is offline, so the report carries its own drawings."""
from html import escape

FONT = 'font-family="Noto Sans CJK SC, WenQuanYi Micro Hei, Microsoft YaHei, DejaVu Sans, sans-serif"'
BAR = "#2f6fb0"
WARN = "#d08a00"
GRID = "#d5dbe1"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    return float(((int(value) // step) + 1) * step)


def columns(labels: list[str], values: list[float], *, fmt=lambda v: f"{v:g}", width=900, height=300,
            ymax: float | None = None, color=BAR, hline: tuple[float, str] | None = None, title="",
            label_px: int = 44) -> str:
    """Vertical bars with their value on top; `hline` (value, text) draws a reference line."""
    if not values:
        return ""
    left, bottom, top = 56, 56, 24
    plot_w, plot_h = width - left - 10, height - bottom - top
    ymax = ymax or _nice_max(max(max(values), hline[0] if hline else 0))
    slot = plot_w / len(values)
    bar_w = max(2.0, slot * 0.7)
    every = max(1, int(len(labels) * label_px / plot_w) + 1)     # thin out x labels that would overlap
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="{escape(title)}" {FONT}>']
    for i in range(5):
        v = ymax * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="12" text-anchor="end">{escape(fmt(v))}</text>')
    for i, (label, v) in enumerate(zip(labels, values)):
        h = plot_h * min(v, ymax) / ymax
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}">'
                   f'<title>{escape(label)}: {escape(fmt(v))}</title></rect>')
        if len(values) <= 40:
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" font-size="12" text-anchor="middle">'
                       f'{escape(fmt(v))}</text>')
        if i % every == 0:
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 18}" font-size="12" '
                       f'text-anchor="middle">{escape(label)}</text>')
    if hline:
        y = top + plot_h - plot_h * min(hline[0], ymax) / ymax
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="{WARN}" '
                   f'stroke-width="2" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{width - 12}" y="{y - 6:.1f}" font-size="13" fill="{WARN}" '
                   f'text-anchor="end">{escape(hline[1])}</text>')
    out.append("</svg>")
    return "".join(out)


def rows(labels: list[str], values: list[float], *, fmt=lambda v: f"{v:g}", width=900, color=WARN,
         title="") -> str:
    """Horizontal bars, one labelled row each: for reasons, whose names are long."""
    if not values:
        return ""
    row_h, left = 30, 300
    height = row_h * len(values) + 10
    vmax = max(values) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
           f'height="{height}" role="img" aria-label="{escape(title)}" {FONT}>']
    for i, (label, v) in enumerate(zip(labels, values)):
        y = 5 + i * row_h
        w = (width - left - 80) * v / vmax
        out.append(f'<text x="{left - 8}" y="{y + 19}" font-size="14" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{color}"/>')
        out.append(f'<text x="{left + w + 6:.1f}" y="{y + 19}" font-size="14">{escape(fmt(v))}</text>')
    out.append("</svg>")
    return "".join(out)

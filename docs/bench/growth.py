#!/usr/bin/env python3
"""Draws docs/bench/growth.svg from the end-to-end rows of docs/benchmarks.md (between the bench-e2e markers):
CPU of ocpoll (cores) and peak RSS (MiB) against the number of instances, on a log scale of instances.

    python3 docs/bench/growth.py

No dependency beyond Python 3's standard library; the SVG is plain text, reviewed like code.
"""
import math
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
REPORT = ROOT / "docs" / "benchmarks.md"
OUT = ROOT / "docs" / "bench" / "growth.svg"


def rows():
    text = REPORT.read_text()
    block = text.split("<!-- bench-e2e:begin -->", 1)[1].split("<!-- bench-e2e:end -->", 1)[0]
    out = []
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 9 or not re.fullmatch(r"[\d,]+", cells[0]):
            continue
        instances = int(cells[0].replace(",", ""))
        cpu = float(cells[7])
        rss = float(cells[8].split()[0])
        out.append((instances, cpu, rss, cells[12] if len(cells) > 12 else ""))
    return sorted(out)


def svg(data):
    w, h, left, right, top, bottom = 720, 360, 70, 70, 40, 60
    xs = [math.log10(d[0]) for d in data]
    x0, x1 = math.floor(min(xs)), math.ceil(max(xs))
    if x0 == x1:
        x1 += 1
    cpu_max = max(1.5, max(d[1] for d in data)) * 1.1
    rss_max = max(512, max(d[2] for d in data)) * 1.1

    def px(v):
        return left + (math.log10(v) - x0) / (x1 - x0) * (w - left - right)

    def py(v, top_value):
        return h - bottom - v / top_value * (h - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="14">ocpoll end to end: CPU and peak RSS by '
        'instances (60 s interval, SQLite)</text>',
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#1f77b4"/>',
        f'<line x1="{w - right}" y1="{top}" x2="{w - right}" y2="{h - bottom}" stroke="#d62728"/>',
    ]
    for e in range(x0, x1 + 1):
        x = px(10**e)
        parts.append(f'<line x1="{x}" y1="{h - bottom}" x2="{x}" y2="{h - bottom + 5}" stroke="black"/>')
        parts.append(f'<text x="{x}" y="{h - bottom + 20}" text-anchor="middle">{10**e:,}</text>')
    parts.append(f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">instances (log scale)</text>')
    for i in range(6):
        c = cpu_max * i / 5
        r = rss_max * i / 5
        parts.append(f'<text x="{left - 8}" y="{py(c, cpu_max) + 4}" text-anchor="end" fill="#1f77b4">{c:.2f}</text>')
        parts.append(f'<text x="{w - right + 8}" y="{py(r, rss_max) + 4}" fill="#d62728">{r:.0f}</text>')
    parts.append(f'<text x="18" y="{h / 2}" transform="rotate(-90 18 {h / 2})" text-anchor="middle" '
                 'fill="#1f77b4">CPU of ocpoll (cores)</text>')
    parts.append(f'<text x="{w - 14}" y="{h / 2}" transform="rotate(90 {w - 14} {h / 2})" text-anchor="middle" '
                 'fill="#d62728">peak RSS (MiB)</text>')
    # the targets of issue 19 at 100,000 instances: 1.5 cores, 512 MB
    parts.append(f'<line x1="{left}" y1="{py(1.5, cpu_max)}" x2="{w - right}" y2="{py(1.5, cpu_max)}" '
                 'stroke="#1f77b4" stroke-dasharray="4 4" opacity="0.6"/>')
    parts.append(f'<line x1="{left}" y1="{py(512, rss_max)}" x2="{w - right}" y2="{py(512, rss_max)}" '
                 'stroke="#d62728" stroke-dasharray="4 4" opacity="0.6"/>')
    parts.append(f'<text x="{left + 6}" y="{py(1.5, cpu_max) - 4}" fill="#1f77b4">target 1.5 cores</text>')
    parts.append(f'<text x="{w - right - 6}" y="{py(512, rss_max) - 4}" text-anchor="end" fill="#d62728">'
                 'target 512 MB</text>')
    for series, color, top_value in ((1, "#1f77b4", cpu_max), (2, "#d62728", rss_max)):
        points = " ".join(f"{px(d[0]):.1f},{py(d[series], top_value):.1f}" for d in data)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        for d in data:
            label = f"{d[series]:.2f}" if series == 1 else f"{d[series]:.0f}"
            parts.append(f'<circle cx="{px(d[0]):.1f}" cy="{py(d[series], top_value):.1f}" r="4" fill="{color}"/>')
            # CPU labels below their points, RSS labels above: the two lines may cross
            dy = 18 if series == 1 else -8
            # at the right edge, left of the point (clear of the RSS axis)
            x, anchor = (px(d[0]) - 6, "end") if px(d[0]) > w - right - 40 else (px(d[0]) + 6, "start")
            parts.append(f'<text x="{x:.1f}" y="{py(d[series], top_value) + dy:.1f}" text-anchor="{anchor}" '
                         f'fill="{color}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    data = rows()
    if not data:
        raise SystemExit(f"no end-to-end rows between the bench-e2e markers of {REPORT}")
    OUT.write_text(svg(data))
    print(f"wrote {OUT.relative_to(ROOT)} from {len(data)} rows: " + ", ".join(f"{d[0]:,}" for d in data))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""usage: bench/soak_plot.py POINTS.jsonl OUT.svg TITLE

Plots a vector soak from the live feed's points (one JSON object per second, as
/api/history serves them): the recall of the latest checked ANN queries (left axis, 0-1) and
the ANN op's service time p50 and p99 over each second (right axis, ms, log scale), against
the minutes since the start. Standard library only: the SVG is written by hand.
"""

import json
import math
import sys

W, H, LEFT, RIGHT, TOP, BOTTOM = 900, 420, 60, 70, 40, 50


def load(path):
    with open(path, encoding="utf-8") as f:
        points = [json.loads(line) for line in f if line.strip()]
    rows = []
    for p in points:
        ann = p["ops"][1] if len(p.get("ops", [])) > 1 else {}
        service = ann.get("service") or {}
        rows.append((p["elapsed_seconds"] / 60, ann.get("recall"), service.get("p50_ms"),
                     service.get("p99_ms")))
    return rows


def polyline(points, colour, dash=""):
    if len(points) < 2:
        return ""
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{extra} points="{coords}"/>\n'


def plot(rows, title):
    minutes = max((r[0] for r in rows), default=1) or 1
    lat = [v for r in rows for v in r[2:] if v]
    lo, hi = math.log10(max(min(lat, default=1), 0.1)), math.log10(max(lat, default=10) * 1.2)
    if hi - lo < 1:
        hi = lo + 1
    x = lambda m: LEFT + (W - LEFT - RIGHT) * m / minutes  # noqa: E731
    y_recall = lambda r: TOP + (H - TOP - BOTTOM) * (1 - r)  # noqa: E731
    y_ms = lambda v: TOP + (H - TOP - BOTTOM) * (1 - (math.log10(v) - lo) / (hi - lo))  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">\n',
           f'<rect width="{W}" height="{H}" fill="white"/>\n',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>\n',
           f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" fill="none" stroke="#888"/>\n']
    for r in (0, 0.25, 0.5, 0.75, 0.9, 1.0):
        out.append(f'<text x="{LEFT - 6}" y="{y_recall(r) + 4:.1f}" text-anchor="end">{r:g}</text>\n')
    out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y_recall(0.9):.1f}" y2="{y_recall(0.9):.1f}" stroke="#c00" stroke-dasharray="2,3"/>\n')
    for e in range(math.ceil(lo), math.floor(hi) + 1):
        out.append(f'<text x="{W - RIGHT + 6}" y="{y_ms(10 ** e) + 4:.1f}">{10 ** e:g} ms</text>\n')
    for m in range(0, int(minutes) + 1, max(1, int(minutes) // 10)):
        out.append(f'<text x="{x(m):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{m}</text>\n')
    out.append(f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle">minutes</text>\n')
    out.append(polyline([(x(m), y_ms(v)) for m, _, v, _ in rows if v], "#999"))
    out.append(polyline([(x(m), y_ms(v)) for m, _, _, v in rows if v], "#e08000"))
    out.append(polyline([(x(m), y_recall(r)) for m, r, _, _ in rows if r is not None], "#0050c0"))
    legend = [("#0050c0", "recall of the latest checks (left)"), ("#e08000", "ANN service p99 per second (right)"),
              ("#999", "ANN service p50 per second (right)"), ("#c00", "alert threshold 0.9")]
    for i, (colour, text) in enumerate(legend):
        out.append(f'<rect x="{LEFT + 10 + 220 * i}" y="{TOP + 6}" width="12" height="3" fill="{colour}"/>'
                   f'<text x="{LEFT + 26 + 220 * i}" y="{TOP + 11}">{text}</text>\n')
    out.append("</svg>\n")
    return "".join(out)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(plot(load(sys.argv[1]), sys.argv[3]))

#!/usr/bin/env python3
"""Plots a metric against the compression rate from `abridge eval --json` reports, as SVG.

    scripts/plot-quality.py REPORT.json [REPORT.json ...] -o plot.svg [--metric answer_kept]

One line per method (baselines dashed), each point the mean over cases with its 95% bootstrap
interval as a bar; rates on the x axis as kept/original (1/2, 1/3, ...). Plain SVG written by
hand: no plotting library needed. Several reports are merged (e.g. runs of different methods on
the same suite and split).
"""

import argparse
import json
import sys
from pathlib import Path

WIDTH, HEIGHT = 720, 400
LEFT, RIGHT, TOP, BOTTOM = 60, 210, 30, 50
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
          "#17becf", "#bcbd22", "#7f7f7f"]
BASELINES = {"none", "head", "tail", "random"}


def load_rows(paths, metric):
    """{method: [(rate, mean, low, high)]} over the overall (ungrouped) rows of the reports."""
    series = {}
    for path in paths:
        report = json.loads(Path(path).read_text())
        for row in report["rows"]:
            fixed_rate = row["method"] in ("none", "closed-book")
            if row.get("group") or metric not in row["metrics"] or fixed_rate:
                continue
            m = row["metrics"][metric]
            series.setdefault(row["method"], []).append((row["rate"], m["mean"], m["low"], m["high"]))
    return {method: sorted(points) for method, points in series.items()}


def fraction(rate):
    inverse = 1 / rate
    return f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-6 else f"{rate:.2f}"


def svg(series, metric, title):
    rates = sorted({p[0] for points in series.values() for p in points})
    if not rates:
        sys.exit(f"no rows with metric {metric!r}")
    low_rate, high_rate = min(rates), max(rates)
    span = (high_rate - low_rate) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(rate):
        return LEFT + (rate - low_rate) / span * plot_w

    def y(value):
        return TOP + (1 - value) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{LEFT}" y="18" font-size="14">{title}</text>']
    for tick in range(6):
        value = tick / 5
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(value)}" y2="{y(value)}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y(value) + 4}" text-anchor="end">{value:.1f}</text>')
    for rate in rates:
        out.append(f'<text x="{x(rate)}" y="{TOP + plot_h + 18}" text-anchor="middle">'
                   f'{fraction(rate)}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">'
               f'rate (kept / original target-LLM tokens)</text>')
    out.append(f'<text transform="translate(16 {TOP + plot_h / 2}) rotate(-90)" '
               f'text-anchor="middle">{metric.replace("_", " ")}</text>')
    for i, (method, points) in enumerate(sorted(series.items())):
        color = COLORS[i % len(COLORS)]
        dash = ' stroke-dasharray="5 4"' if method in BASELINES else ""
        path = " ".join(f"{'M' if j == 0 else 'L'}{x(r):.1f},{y(m):.1f}"
                        for j, (r, m, _, _) in enumerate(points))
        out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for r, m, low, high in points:
            out.append(f'<line x1="{x(r):.1f}" x2="{x(r):.1f}" y1="{y(low):.1f}" '
                       f'y2="{y(high):.1f}" stroke="{color}" stroke-opacity="0.5"/>')
            out.append(f'<circle cx="{x(r):.1f}" cy="{y(m):.1f}" r="3" fill="{color}"/>')
        legend_y = TOP + 16 * i + 8
        out.append(f'<line x1="{WIDTH - RIGHT + 12}" x2="{WIDTH - RIGHT + 32}" y1="{legend_y}" '
                   f'y2="{legend_y}" stroke="{color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{WIDTH - RIGHT + 38}" y="{legend_y + 4}">{method}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--metric", default="answer_kept")
    parser.add_argument("--title", default=None)
    args = parser.parse_args()
    series = load_rows(args.reports, args.metric)
    title = args.title or f"{args.metric.replace('_', ' ')} vs rate"
    Path(args.output).write_text(svg(series, args.metric, title))
    print(f"wrote {args.output} ({len(series)} methods)")


if __name__ == "__main__":
    main()

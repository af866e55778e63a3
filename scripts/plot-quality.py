#!/usr/bin/env python3
"""Plots a metric against the compression rate from `abridge eval --json` reports, as SVG.

    scripts/plot-quality.py REPORT.json [REPORT.json ...] -o plot.svg [--metric answer_kept]
    scripts/plot-quality.py RESULTS.jsonl -o plot.svg --metric generated_match --table

A `.jsonl` input is `abridge eval --jsonl`'s stream of case results (a run that was stopped leaves
one): its cases that have every method and rate of the file are summarised here, each mean with a
95% percentile-bootstrap interval over cases (1,000 resamples, as `abridge eval`). `--table` also
prints the rows as a Markdown table.

One line per method (baselines dashed), each point the mean over cases with its 95% bootstrap
interval as a bar; rates on the x axis as kept/original (1/2, 1/3, ...). Plain SVG written by
hand: no plotting library needed. Several reports are merged (e.g. runs of different methods on
the same suite and split).
"""

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

WIDTH, HEIGHT = 720, 400
LEFT, RIGHT, TOP, BOTTOM = 60, 210, 30, 50
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
          "#17becf", "#bcbd22", "#7f7f7f"]
BASELINES = {"none", "head", "tail", "random"}


def rows_of_results(path, resamples=1000):
    """Report-like rows (method, rate, n, metrics with mean/low/high) of a `--jsonl` file, over the
    cases complete in it."""
    results = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    keys = {(r["method"], r["rate"]) for r in results}
    by_case = defaultdict(dict)
    for r in results:
        by_case[r["id"]][(r["method"], r["rate"])] = r
    complete = sorted(case for case, done in by_case.items() if set(done) == keys)
    rng = random.Random(0)
    draws = [[rng.randrange(len(complete)) for _ in complete] for _ in range(resamples)]
    rows = []
    for method, rate in sorted(keys, key=lambda k: (k[0], -k[1])):
        cases = [by_case[c][(method, rate)] for c in complete]
        metrics = {}
        for name in sorted({m for case in cases for m in case["metrics"]}):
            values = [case["metrics"].get(name, float("nan")) for case in cases]
            means = sorted(sum(values[i] for i in draw) / len(draw) for draw in draws)
            metrics[name] = {"mean": sum(values) / len(values),
                             "low": means[int(0.025 * resamples)],
                             "high": means[int(0.975 * resamples) - 1]}
        rows.append({"method": method, "rate": rate, "n": len(cases), "group": None, "metrics": metrics})
    return rows


def load_rows(paths, metric):
    """{method: [(rate, mean, low, high)]} over the overall (ungrouped) rows of the reports."""
    series = {}
    for path in paths:
        if path.endswith(".jsonl"):
            rows = rows_of_results(path)
        else:
            rows = json.loads(Path(path).read_text())["rows"]
        for row in rows:
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
    parser.add_argument("--table", action="store_true", help="print the .jsonl inputs' rows as Markdown")
    args = parser.parse_args()
    if args.table:
        for path in (p for p in args.reports if p.endswith(".jsonl")):
            rows = rows_of_results(path)
            names = [m for m in ("generated_match", "generated_exact", "answer_kept", "achieved_rate")
                     if any(m in row["metrics"] for row in rows)]
            print(f"{path}\n\n| method | rate | n | {' | '.join(n.replace('_', ' ') for n in names)} |")
            print("|---|---|---|" + "---|" * len(names))
            for row in rows:
                cells = [f"{m['mean']:.3f} [{m['low']:.3f}, {m['high']:.3f}]" if m else ""
                         for m in (row["metrics"].get(n) for n in names)]
                print(f"| {row['method']} | {fraction(row['rate']) if 0 < row['rate'] < 1 else format(row['rate'], 'g')} | {row['n']} | {' | '.join(cells)} |")
            print()
    series = load_rows(args.reports, args.metric)
    title = args.title or f"{args.metric.replace('_', ' ')} vs rate"
    Path(args.output).write_text(svg(series, args.metric, title))
    print(f"wrote {args.output} ({len(series)} methods)")


if __name__ == "__main__":
    main()

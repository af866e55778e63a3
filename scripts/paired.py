#!/usr/bin/env python3
"""Paired comparison of two methods in `abridge eval --json` reports: the mean per-case difference
of a metric (B − A) at each rate, with a 95% percentile-bootstrap interval over cases.

    scripts/paired.py REPORT.json [MORE.json|RESULTS.jsonl ...] --a selective-context --b auto [--metric answer_kept]

Cases are matched by id and rate; reports may be concatenated (e.g. two runs on the same sample
with different methods); a `.jsonl` file is `abridge eval --jsonl`'s stream of case results. A method without a rate (`none`, `closed-book`) is matched at every rate.
"""

import argparse
import json
import random
from collections import defaultdict


def rate_name(rate):
    for d in range(1, 21):
        if abs(rate * d - 1) < 1e-9:
            return f"1/{d}" if d > 1 else "1"
    return f"{rate:g}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+")
    parser.add_argument("--a", required=True, help="the method subtracted")
    parser.add_argument("--b", required=True, help="the method compared with it")
    parser.add_argument("--metric", default="answer_kept")
    parser.add_argument("--resamples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    values = defaultdict(dict)  # method -> {(id, rate): value}
    rates = set()
    for path in args.reports:
        with open(path) as f:
            if path.endswith(".jsonl"):
                results = [json.loads(line) for line in f if line.strip()]
            else:
                results = json.load(f)["results"]
        for result in results:
            if args.metric not in result["metrics"]:
                continue
            values[result["method"]][(result["id"], result["rate"])] = result["metrics"][args.metric]
            if result["method"] not in ("none", "closed-book"):
                rates.add(result["rate"])
    for method in (args.a, args.b):
        if method not in values:
            raise SystemExit(f"paired.py: no `{method}` results with metric `{args.metric}`; methods: {sorted(values)}")

    def lookup(method, case, rate):
        fixed = [v for (c, _), v in values[method].items() if c == case] if method in ("none", "closed-book") else []
        return fixed[0] if fixed else values[method].get((case, rate))

    rng = random.Random(args.seed)
    print(f"| rate | n | {args.a} | {args.b} | {args.b} − {args.a} [95% CI] |")
    print("|---|---|---|---|---|")
    for rate in sorted(rates, reverse=True):
        cases = sorted({c for (c, r) in values[args.b].keys() | values[args.a].keys() if r == rate or args.a in ("none", "closed-book") or args.b in ("none", "closed-book")})
        pairs = [(lookup(args.a, c, rate), lookup(args.b, c, rate)) for c in cases]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        if not pairs:
            continue
        diffs = [b - a for a, b in pairs]
        n = len(diffs)
        means = sorted(sum(rng.choice(diffs) for _ in range(n)) / n for _ in range(args.resamples))
        low, high = means[int(0.025 * args.resamples)], means[int(0.975 * args.resamples) - 1]
        mean_a = sum(a for a, _ in pairs) / n
        mean_b = sum(b for _, b in pairs) / n
        print(f"| {rate_name(rate)} | {n} | {mean_a:.3f} | {mean_b:.3f} | {sum(diffs) / n:+.3f} [{low:+.3f}, {high:+.3f}] |")


if __name__ == "__main__":
    main()

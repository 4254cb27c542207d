#!/usr/bin/env python3
"""How far Prometheus's histogram_quantile over classic buckets reads p50, p99 and p99.9 from
the exact order statistic of the same requests, for the default bucket layout (100 us to 10 s
by a factor, bounds rounded to 3 significant digits), by sample size. BENCHMARKS.md,
"Dashboard percentiles".

    python3 bench/bucket_error.py [REQUESTS ...] [--factor 1.15] [--runs 200]

The latency model has three modes: 97% lognormal around 0.7 ms, 2.7% around 6 ms, 0.3% around
20 ms (roughly what the histograms test sees from the local node). Standard library only.
"""

import argparse
import bisect
import math
import random


def sample(n, rng):
    out = []
    for _ in range(n):
        u = rng.random()
        if u < 0.97:
            out.append(rng.lognormvariate(math.log(0.0007), 0.5))
        elif u < 0.997:
            out.append(rng.lognormvariate(math.log(0.006), 0.4))
        else:
            out.append(rng.lognormvariate(math.log(0.02), 0.35))
    return out


def bounds(factor, lo=100e-6, hi=10.0):
    out, x = [], lo
    while x < hi * 1.0001:
        out.append(float(f"{x:.3g}"))
        x *= factor
    return out


def histogram_quantile(q, upper, xs):
    """Prometheus's interpolation: linear inside the bucket that holds rank q * n."""
    counts = [0] * (len(upper) + 1)
    for x in xs:
        counts[bisect.bisect_left(upper, x)] += 1
    rank, below = q * len(xs), 0
    for i, c in enumerate(counts):
        if below + c >= rank:
            lo = 0.0 if i == 0 else upper[i - 1]
            hi = upper[i] if i < len(upper) else upper[-1]
            return lo + (hi - lo) * (rank - below) / c
        below += c
    return upper[-1]


def exact(q, xs):
    s = sorted(xs)
    return s[min(len(s) - 1, math.ceil(q * len(s)) - 1)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("requests", nargs="*", type=int, default=[30000, 60000, 120000])
    p.add_argument("--factor", type=float, default=1.15)
    p.add_argument("--runs", type=int, default=200)
    a = p.parse_args()
    rng = random.Random(1)
    upper = bounds(a.factor)
    for n in a.requests:
        over, worst = {}, {}
        for _ in range(a.runs):
            xs = sample(n, rng)
            for q in (0.5, 0.99, 0.999):
                e = abs(histogram_quantile(q, upper, xs) - exact(q, xs)) / exact(q, xs)
                worst[q] = max(worst.get(q, 0.0), e)
                over[q] = over.get(q, 0) + (e > 0.05)
        cells = ", ".join(f"p{q * 100:g}: {over[q]}/{a.runs} over 5%, worst {worst[q] * 100:.1f}%" for q in over)
        print(f"factor {a.factor} ({len(upper)} bounds), {n} requests: {cells}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The Markdown rows of scripts/bench, from the JSON its runs write (standard library only).

    bench_report.py compare-row FILE NODE_CPU_BEFORE NODE_CPU_AFTER T0 T1
                                      a `cqlpulse compare` row, with the node's CPU over T0..T1
    bench_report.py repeated OUT REPEAT
                                      the repeated CPU runs of OUT/cpu-MODEL-I.json, per model
    bench_report.py overhead-row FILE RUN MODE
                                      one run of the metrics-cost section
    bench_report.py overhead-summary OUT SCRAPE_TIMES
                                      the medians of the metrics-cost section, scrape latency
    bench_report.py field FILE PATH [round | %FORMAT]
                                      one field of a JSON file (PATH: keys joined by dots),
                                      rounded or formatted (`%.2f`)
"""

import glob
import json
import statistics
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def compare_row(path, before, after, t0, t1):
    row = load(path)[0]
    node = (float(after) - float(before)) / (float(t1) - float(t0))
    print(f"| {row['model']} | {row['knob']} | {row['ops_per_second']:.0f} | {row['p50_ms']:.2f} "
          f"| {row['p99_ms']:.2f} | {row['p999_ms']:.2f} | {row['max_ms']:.2f} "
          f"| {row['client_cpu_us_per_op']:.2f} | {row['peak_rss_mib']:.1f} | {node:.2f} |")


def repeated(out, repeat):
    for model in ["pipeline", "unbounded", "chains"]:
        runs = [load(f"{out}/cpu-{model}-{i}.json")[0] for i in range(1, int(repeat) + 1)]
        cpu = [r["client_cpu_us_per_op"] for r in runs]
        rate = statistics.median(r["ops_per_second"] for r in runs)
        print(f"| {model} | {' / '.join(f'{c:.2f}' for c in cpu)} | {statistics.median(cpu):.2f} "
              f"| {rate:.0f} |")


def overhead_row(path, run, mode):
    s = load(path)
    print(f"| {run} | {mode} | {s['total']['ops_per_second']:.0f} | {s['client_cpu_us_per_op']:.2f} |")


def overhead_summary(out, scrape_times):
    def runs(mode):
        return [load(f) for f in sorted(glob.glob(f"{out}/overhead-{mode}-*.json"))]

    def median(rs, field):
        return statistics.median(field(r) for r in rs)

    off, on = runs("off"), runs("on")
    rate_off = median(off, lambda s: s["total"]["ops_per_second"])
    rate_on = median(on, lambda s: s["total"]["ops_per_second"])
    cpu_off = median(off, lambda s: s["client_cpu_us_per_op"])
    cpu_on = median(on, lambda s: s["client_cpu_us_per_op"])
    with open(scrape_times, encoding="utf-8") as f:
        times = sorted(float(t) * 1000 for t in f if t.strip() and float(t) > 0)
    print()
    print(f"Medians: {rate_off:.0f} ops/s and {cpu_off:.2f} us/op without metrics; {rate_on:.0f} ops/s "
          f"and {cpu_on:.2f} us/op scraped every second: throughput "
          f"{100 * (rate_on - rate_off) / rate_off:+.1f}%, CPU per op "
          f"{100 * (cpu_on - cpu_off) / cpu_off:+.1f}%.")
    if times:
        print(f"Scrape latency over {len(times)} scrapes: median {statistics.median(times):.2f} ms, "
              f"max {times[-1]:.2f} ms.")


def field(path, dotted, how=None):
    value = load(path)
    for key in dotted.split("."):
        value = value[key]
    if how == "round":
        value = round(value)
    elif how:
        value = how % value
    print(value)


COMMANDS = {
    "compare-row": compare_row,
    "repeated": repeated,
    "overhead-row": overhead_row,
    "overhead-summary": overhead_summary,
    "field": field,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    COMMANDS[sys.argv[1]](*sys.argv[2:])

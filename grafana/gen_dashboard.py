#!/usr/bin/env python3
"""Generates grafana/dashboards/cqlpulse.json and the no-data allow list of its queries.

usage: grafana/gen_dashboard.py --write    write both files
       grafana/gen_dashboard.py --check    exit 1 when either file differs from what this makes

Why a generator: the dashboard has ~70 queries that repeat one selector, one workload join
and one dual-mode latency form (native histograms or classic buckets). Written out by hand
they drift apart; here each is one function. The JSON stays committed (Grafana provisions it,
deploy/checks/gen_k8s.py wraps it in a ConfigMap), and scripts/check-deploy checks it is in
step with this file. Standard library only.

Layout: a top row an operator reads in five seconds (rate against target, response-time p99,
errors/s, in-flight against the limit, alerts firing, run phase), the main graphs and the
per-op summary, then collapsed detail rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "grafana" / "dashboards" / "cqlpulse.json"
ALLOW_LIST = REPO / "deploy" / "checks" / "dashboard-no-data.txt"
UID = "cqlpulse"
DS = {"type": "prometheus", "uid": "${datasource}"}

SEL = 'job=~"$job", instance=~"$instance"'
SEL_OP = SEL + ', op=~"$op"'
# Restricts any series of an instance to the instances of the selected workloads.
W = ' and on(job, instance) cqlpulse_run_info{workload=~"$workload"}'
RI = "[$__rate_interval]"

# Why a query may be empty in a healthy run (the data test allows these; see
# scripts/check-dashboard-data).
NO_FAILURES = "failed requests only: a healthy run has none"
NO_ALERTS = "ALERTS exists only once an alert has fired; a healthy run has none"
NO_VERIFY = "verified reads only: a spec without `verify` on a read op has none"
NO_PAGES = "reads only: a write-only run fetches no page"
NO_SCYLLA = "ScyllaDB's own metrics (job scylla): none against Cassandra or without the scrape"


# ------------------------------------------------------------------ query builders

def rate(metric: str, sel: str = SEL_OP, by: str | None = None, fn: str = "rate",
         rng: str = RI) -> str:
    agg = f"sum by ({by})" if by else "sum"
    return f"{agg} ({fn}({metric}{{{sel}}}{rng}){W})"


def gauge(metric: str, by: str | None = None, sel: str = SEL) -> str:
    agg = f"sum by ({by})" if by else "sum"
    return f"{agg} ({metric}{{{sel}}}{W})"


def quantile(q: float, metric: str, by: str = "", sel: str = SEL_OP, ok: bool = True) -> str:
    """The dual-mode quantile of the contract: native histograms first, classic buckets after."""
    matchers = ('outcome="ok", ' if ok else "") + sel
    native_by = f"sum by ({by})" if by else "sum"
    classic_by = f"sum by ({by + ', ' if by else ''}le)"
    return (f"histogram_quantile({q}, {native_by} (rate({metric}{{{matchers}}}{RI}){W}))\n"
            f"or\n"
            f"histogram_quantile({q}, {classic_by} (rate({metric}_bucket{{{matchers}}}{RI}){W}))")


class Target:
    def __init__(self, expr: str, legend: str = "", instant: bool = False, fmt: str | None = None,
                 empty: str | None = None):
        self.expr, self.legend, self.instant, self.fmt, self.empty = expr, legend, instant, fmt, empty


def T(expr, legend="", **kw) -> Target:
    return Target(expr, legend, **kw)


# ------------------------------------------------------------------ panel builders

class Board:
    def __init__(self):
        self.panels: list[dict] = []
        self.allow: list[tuple[str, str]] = []
        self.next_id = 1
        self.y = 0
        self.x = 0
        self.row_h = 0
        self.row: dict | None = None

    def _place(self, w: int, h: int) -> dict:
        if self.x + w > 24:
            self.y += self.row_h
            self.x, self.row_h = 0, 0
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def section(self, title: str, collapsed: bool) -> None:
        self.y += self.row_h
        self.x, self.row_h = 0, 0
        row = {"type": "row", "id": self.next_id, "title": title, "collapsed": collapsed,
               "panels": [], "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}}
        self.next_id += 1
        self.y += 1
        self.panels.append(row)
        self.row = row if collapsed else None

    def panel(self, kind: str, title: str, description: str, unit: str, targets: list[Target],
              w: int = 12, h: int = 8, empty: str | None = None, defaults: dict | None = None,
              options: dict | None = None, extra: dict | None = None) -> dict:
        pid = self.next_id
        self.next_id += 1
        refs = "ABCDEFGHIJ"
        out_targets = []
        for i, t in enumerate(targets):
            target = {"datasource": DS, "editorMode": "code", "expr": t.expr,
                      "legendFormat": t.legend, "range": not t.instant, "refId": refs[i]}
            if t.instant:
                target["instant"] = True
            if t.fmt:
                target["format"] = t.fmt
            out_targets.append(target)
            if t.empty and not empty:
                self.allow.append((f"{UID}/{pid}/{refs[i]}", t.empty))
        if empty:
            self.allow.append((f"{UID}/{pid}", empty))
        fdefaults = {"unit": unit}
        fdefaults.update(defaults or {})
        p = {"type": kind, "id": pid, "title": title, "description": description,
             "datasource": DS, "gridPos": self._place(w, h),
             "fieldConfig": {"defaults": fdefaults, "overrides": []},
             "options": options or {}, "targets": out_targets}
        p.update(extra or {})
        (self.row["panels"] if self.row else self.panels).append(p)
        return p

    def timeseries(self, title, description, unit, targets, w=12, h=8, empty=None,
                   stack=False, overrides=None):
        p = self.panel("timeseries", title, description, unit, targets, w, h, empty,
                       defaults={"custom": {"drawStyle": "line", "lineWidth": 1,
                                            "fillOpacity": 10, "showPoints": "never",
                                            "axisSoftMin": 0, "spanNulls": False,
                                            "stacking": {"mode": "normal" if stack else "none",
                                                         "group": "A"}}},
                       options={"legend": {"displayMode": "table", "placement": "bottom",
                                           "showLegend": True,
                                           "calcs": ["mean", "max", "lastNotNull"]},
                                "tooltip": {"mode": "multi", "sort": "desc"}})
        p["fieldConfig"]["overrides"] = overrides or []
        return p

    def stat(self, title, description, unit, targets, w=4, h=4, empty=None, steps=None,
             text_mode="value_and_name", decimals=None, graph=True):
        defaults = {"color": {"mode": "thresholds"},
                    "thresholds": {"mode": "absolute",
                                   "steps": steps or [{"color": "green", "value": None}]}}
        if decimals is not None:
            defaults["decimals"] = decimals
        return self.panel("stat", title, description, unit, targets, w, h, empty,
                          defaults=defaults,
                          options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                                     "values": False},
                                   "colorMode": "value",
                                   "graphMode": "area" if graph else "none",
                                   "justifyMode": "auto", "textMode": text_mode,
                                   "orientation": "auto"})

    def table(self, title, description, unit, targets, w=24, h=6, empty=None, organize=None,
              overrides=None):
        p = self.panel("table", title, description, unit, targets, w, h, empty,
                       defaults={"custom": {"align": "auto"}},
                       options={"showHeader": True, "cellHeight": "sm"},
                       extra={"transformations": [{"id": "merge", "options": {}},
                                                  {"id": "organize",
                                                   "options": organize or {}}]})
        p["fieldConfig"]["overrides"] = overrides or []
        return p

    def heatmap(self, title, description, target: Target, w=24, h=9, empty=None):
        return self.panel(
            "heatmap", title, description, "s", [target], w, h, empty,
            defaults={"custom": {"hideFrom": {"legend": False, "tooltip": False, "viz": False},
                                 "scaleDistribution": {"type": "linear"}}},
            options={"calculate": False, "cellGap": 1, "cellValues": {"unit": "ops"},
                     "color": {"mode": "scheme", "scheme": "Oranges", "scale": "exponential",
                               "exponent": 0.5, "fill": "dark-orange", "reverse": False,
                               "steps": 64},
                     "filterValues": {"le": 1e-09}, "legend": {"show": True},
                     "rowsFrame": {"layout": "le"},
                     "tooltip": {"mode": "single", "yHistogram": False,
                                 "showColorScale": False},
                     "yAxis": {"axisPlacement": "left", "reverse": False, "unit": "s"}})


def dashed(name: str) -> dict:
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": "custom.lineStyle",
                            "value": {"fill": "dash", "dash": [10, 10]}},
                           {"id": "custom.fillOpacity", "value": 0}]}


def unit_override(name: str, unit: str) -> dict:
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": "unit", "value": unit}]}


# ------------------------------------------------------------------ the dashboard

from gen_dashboard_panels import build  # noqa: E402  (the panels, in their own file)


def dashboard() -> tuple[dict, list[tuple[str, str]]]:
    b = Board()
    build(b, sys.modules[__name__])
    dash = {
        "uid": UID,
        "title": "cqlpulse",
        "description": "Load generated by cqlpulse against Cassandra/ScyllaDB: throughput "
                       "against target, latency (service and response time), pacing, errors, "
                       "the coordinators, and the health of the client itself. Generated by "
                       "grafana/gen_dashboard.py.",
        "tags": ["cqlpulse", "cassandra", "scylladb", "load"],
        "editable": True, "graphTooltip": 1, "fiscalYearStartMonth": 0, "liveNow": False,
        "refresh": "10s", "schemaVersion": 39, "version": 1,
        "time": {"from": "now-30m", "to": "now"}, "timepicker": {}, "timezone": "browser",
        "weekStart": "", "id": None,
        "links": links(),
        "annotations": {"list": annotations()},
        "templating": {"list": variables()},
        "panels": b.panels,
    }
    return dash, b.allow


def links() -> list[dict]:
    # Dashboards of the database beside this one, found by tag: Scylla Monitoring tags its
    # dashboards "scylla"; tag your Cassandra dashboards "cassandra" (deploy/README.md).
    return [
        {"type": "dashboards", "tags": ["scylla"], "asDropdown": True, "includeVars": False,
         "keepTime": True, "title": "ScyllaDB dashboards", "icon": "external link",
         "targetBlank": False, "tooltip": "", "url": ""},
        {"type": "dashboards", "tags": ["cassandra"], "asDropdown": True, "includeVars": False,
         "keepTime": True, "title": "Cassandra dashboards", "icon": "external link",
         "targetBlank": False, "tooltip": "", "url": ""},
        {"type": "link", "title": "Scylla Monitoring Stack", "icon": "doc",
         "url": "https://monitoring.docs.scylladb.com/", "targetBlank": True,
         "asDropdown": False, "includeVars": False, "keepTime": False, "tags": [],
         "tooltip": "Dashboards for ScyllaDB's own metrics (port 9180)"},
    ]


def annotation(name: str, color: str, expr: str, title: str, text: str) -> dict:
    return {"datasource": DS, "enable": True, "hide": False, "step": "60s",
            "useValueForTime": False, "name": name, "iconColor": color, "expr": expr,
            "titleFormat": title, "textFormat": text, "tagKeys": "job,instance"}


def annotations() -> list[dict]:
    info = f'cqlpulse_run_info{{{SEL}, workload=~"$workload"}}'
    phase = f'cqlpulse_run_phase{{{SEL}}}'
    return [
        {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
         "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
         "name": "Annotations & Alerts", "type": "dashboard"},
        # A run id that did not exist a minute earlier: a process started.
        annotation("Run starts", "red",
                   f"max by (job, instance, run_id) ({info})\n"
                   f"unless max by (job, instance, run_id) ({info} offset 1m)",
                   "Run started", "{{instance}} run {{run_id}}"),
        # A spec digest new to an instance that was already there a minute earlier.
        annotation("Reloads", "purple",
                   f"(max by (job, instance, spec_digest) ({info})\n"
                   f" unless max by (job, instance, spec_digest) ({info} offset 1m))\n"
                   f"and on(job, instance) max by (job, instance) ({info} offset 1m)",
                   "Spec reloaded", "{{instance}} spec {{spec_digest}}"),
        annotation("Rejected reloads", "orange",
                   f'sum by (job, instance) (changes(cqlpulse_config_reloads_total'
                   f'{{{SEL}, result="rejected"}}[1m])) > 0',
                   "Reload rejected", "{{instance}}"),
        annotation("Phase changes", "blue",
                   f"max by (job, instance, phase) ({phase} == 1)\n"
                   f"unless max by (job, instance, phase) ({phase} offset 1m == 1)",
                   "Phase {{phase}}", "{{instance}}"),
        annotation("Target rate changes", "green",
                   f"changes(cqlpulse_target_rate{{{SEL}}}[1m]) > 0",
                   "Target rate changed", "{{instance}}"),
    ]


def query_var(name: str, label: str, query: str, multi: bool = True) -> dict:
    return {"type": "query", "name": name, "label": label, "datasource": DS,
            "definition": query,
            "query": {"qryType": 1, "query": query,
                      "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2, "sort": 1, "multi": multi, "includeAll": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [], "regex": "", "hide": 0, "skipUrlSync": False}


def variables() -> list[dict]:
    # Job, then workload, then the instances of those workloads, then their ops: each
    # variable narrows the next.
    return [
        {"type": "datasource", "name": "datasource", "label": "Data source",
         "query": "prometheus", "current": {}, "hide": 0, "includeAll": False, "multi": False,
         "options": [], "refresh": 1, "regex": "", "skipUrlSync": False},
        query_var("job", "Job", "label_values(cqlpulse_run_info, job)"),
        query_var("workload", "Workload",
                  'label_values(cqlpulse_run_info{job=~"$job"}, workload)'),
        query_var("instance", "Instance",
                  'label_values(cqlpulse_run_info{job=~"$job", workload=~"$workload"}, instance)'),
        query_var("op", "Op",
                  'label_values(cqlpulse_requests_total{job=~"$job", instance=~"$instance"}, op)'),
    ]


def allow_list_text(allow: list[tuple[str, str]]) -> str:
    head = """\
# Dashboard queries that may legitimately return no data in a healthy run, for
# scripts/check-dashboard-data. One entry a line: KEY  REASON.
# KEY is <dashboard uid>/<panel id> (every query of the panel) or <uid>/<panel id>/<refId>;
# `scripts/check-dashboard-data --list` prints the keys. scripts/check-deploy fails on an
# entry that names no panel, or has no reason.
#
# GENERATED by grafana/gen_dashboard.py (`--write`) from the `empty=` reasons of its panels:
# edit those, not this file. The daemon's renderer writes every labelled series from the
# start, at zero, except the latency of failures (written once an op has failed), so only
# these are empty: alerts that never fired, failure latency, and ScyllaDB's own metrics.
"""
    lines = [f"{key}  {reason}" for key, reason in allow]
    return head + "\n".join(lines) + "\n"


def render() -> tuple[str, str]:
    dash, allow = dashboard()
    return json.dumps(dash, indent=2) + "\n", allow_list_text(allow)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = ap.parse_args()
    outputs = dict(zip((DASHBOARD, ALLOW_LIST), render()))
    stale = [p for p, text in outputs.items()
             if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.write:
        for p in stale:
            p.write_text(outputs[p], encoding="utf-8")
            print(f"wrote {p.relative_to(REPO)}")
        return 0
    for p in stale:
        print(f"{p.relative_to(REPO)} is not what grafana/gen_dashboard.py makes: "
              "run grafana/gen_dashboard.py --write")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())

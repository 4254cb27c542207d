"""The building blocks of the cqlpulse dashboard, shared by grafana/gen_dashboard.py (the
dashboard around the panels) and grafana/gen_dashboard_panels.py (the panels): paths, the
selectors every query repeats, the query builders, and the Board that lays panels out.
Standard library only.
"""

from __future__ import annotations

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
NO_RECALL = "recall series exist only for ANN ops with [ops.recall] (vector workloads)"


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

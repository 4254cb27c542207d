"""Shared helpers for the dashboard checks: load Grafana dashboards, list their PromQL
queries, find the metric names a query uses, and substitute Grafana variables.

Used by deploy/checks/dashboard_lint.py (offline, run by scripts/check-deploy) and by
scripts/check-dashboard-data (against a live Prometheus). Standard library only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO / "grafana" / "dashboards"
# The metric catalogue: the tables of docs/metrics.md (a unit test holds the renderer to them).
CATALOGUE = REPO / "docs" / "metrics.md"
NO_DATA_ALLOW_LIST = REPO / "deploy" / "checks" / "dashboard-no-data.txt"

# The data source every panel, target and annotation must use: the dashboard's variable.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# PromQL words that look like identifiers but name no metric.
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2", "start", "end",
}

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@dataclass
class Query:
    """One PromQL expression of a dashboard, with where it lives."""

    dashboard: str  # dashboard uid
    kind: str  # "panel", "annotation" or "variable"
    key: str  # stable id: "<uid>/<panel id>/<refId>", "<uid>/annotation/<name>", ...
    title: str  # panel title, annotation name or variable name
    expr: str
    instant: bool = False


def load_dashboards(directory: Path = DASHBOARD_DIR) -> list[tuple[Path, dict]]:
    """Every *.json under directory, parsed. Raises ValueError naming the file on bad JSON."""
    out = []
    for path in sorted(directory.rglob("*.json")):
        try:
            out.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: invalid JSON: {exc}") from exc
    return out


def iter_panels(dashboard: dict):
    """All panels, rows included, with the panels nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        for inner in panel.get("panels", []) or []:
            yield inner


def label_values_to_promql(query: str) -> str | None:
    """label_values(expr, label) -> count by (label) (expr); None for other forms."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", query, re.S)
    if not m:
        return None
    return f"count by ({m.group(2)}) ({m.group(1).strip()})"


def variable_query_text(var: dict) -> str:
    q = var.get("query")
    if isinstance(q, dict):
        return q.get("query", "") or ""
    return q or ""


def iter_queries(dashboard: dict) -> list[Query]:
    uid = dashboard.get("uid", "?")
    out: list[Query] = []
    for panel in iter_panels(dashboard):
        if panel.get("type") == "row":
            continue
        for target in panel.get("targets", []) or []:
            expr = target.get("expr")
            if not expr:
                continue
            out.append(Query(uid, "panel", f"{uid}/{panel.get('id')}/{target.get('refId', '?')}",
                             panel.get("title", ""), expr,
                             bool(target.get("instant")) and not target.get("range")))
    for ann in dashboard.get("annotations", {}).get("list", []):
        if ann.get("expr"):
            out.append(Query(uid, "annotation", f"{uid}/annotation/{ann.get('name')}",
                             ann.get("name", ""), ann["expr"]))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        promql = label_values_to_promql(variable_query_text(var))
        if promql:
            out.append(Query(uid, "variable", f"{uid}/variable/{var.get('name')}",
                             var.get("name", ""), promql))
    return out


def load_catalogue(path: Path = CATALOGUE) -> dict[str, str]:
    """Exposed series name -> metric type, from every table row of docs/metrics.md whose
    first cell is a `name`; histograms expanded to _bucket/_sum/_count."""
    names: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.startswith("| `"):
            continue
        cells = [c.strip() for c in raw.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.fullmatch(r"`[A-Za-z_:][A-Za-z0-9_:]*`", cells[0]):
            raise ValueError(f"{path}:{lineno}: expected '| `NAME` | TYPE | ...', got {raw!r}")
        name, kind = cells[0].strip("`"), cells[1]
        if kind not in ("counter", "gauge", "histogram", "summary", "synthetic"):
            raise ValueError(f"{path}:{lineno}: unknown type {kind!r}")
        if kind == "histogram":
            for suffix in HISTOGRAM_SUFFIXES:
                names[name + suffix] = kind
            # Native histograms (issue 12) are queried by the bare name.
            names[name] = kind
        else:
            names[name] = kind
    if not names:
        raise ValueError(f"{path}: no catalogue rows")
    return names


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_:$])(0[xX][0-9a-fA-F]+|(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"
    r"(ms|s|m|h|d|w|y)?)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (by bare name or by __name__ matcher)."""
    names = set()
    for m in re.finditer(r'__name__\s*=\s*"([^"]*)"', expr):
        names.add(m.group(1))
    s = _STRING.sub('""', expr)
    s = re.sub(r"#[^\n]*", " ", s)  # comments
    s = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\}?", " ", s)  # Grafana variables
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # range and subquery selectors
    s = _GROUPING.sub(" ", s)  # by (...), on (...), group_left (...) label lists
    s = _NUMBER.sub(" ", s)
    for m in _IDENT.finditer(s):
        word = m.group(0)
        rest = s[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def range_selectors(expr: str) -> list[str]:
    """Contents of every [...] of an expression (string literals ignored)."""
    s = _STRING.sub('""', expr)
    return [m.group(1).strip() for m in re.finditer(r"\[([^\]]*)\]", s)]


def substitute(expr: str, window: str = "1m", values: dict[str, str] | None = None) -> str:
    """Replace Grafana variables by values Prometheus accepts.

    Interval variables become `window`; every other variable (used in =~ matchers) becomes
    ".*" unless `values` names it.
    """
    values = values or {}
    builtins = {
        "__rate_interval": window,
        "__interval": window,
        "__range": window,
        "__rate_interval_ms": str(duration_seconds(window) * 1000),
        "__interval_ms": str(duration_seconds(window) * 1000),
        "__range_s": str(duration_seconds(window)),
        "__range_ms": str(duration_seconds(window) * 1000),
    }

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in values:
            return values[name]
        if name in builtins:
            return builtins[name]
        return ".*"

    # Names start with a letter or "_", so the "$1" of label_replace is left alone.
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}|\[\[([A-Za-z_][A-Za-z0-9_]*)\]\]"
                  r"|\$([A-Za-z_][A-Za-z0-9_]*)", repl, expr)


def duration_seconds(text: str) -> int:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total = 0.0
    for num, unit in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text):
        total += int(num) * units[unit]
    if total <= 0:
        raise ValueError(f"not a duration: {text!r}")
    return int(total)


def load_allow_list(path: Path = NO_DATA_ALLOW_LIST) -> dict[str, str]:
    """Query key (or key prefix "<uid>/<panel id>") -> reason. Each line: KEY  REASON."""
    allowed: dict[str, str] = {}
    if not path.exists():
        return allowed
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) < 2 or not parts[1].strip():
            raise ValueError(f"{path}:{lineno}: every entry needs a reason: {raw!r}")
        allowed[parts[0]] = parts[1].strip()
    return allowed


def allowed_reason(allowed: dict[str, str], key: str) -> str | None:
    """The allow-list reason covering a query key: exact key, or its panel ("uid/id")."""
    if key in allowed:
        return allowed[key]
    panel_key = key.rsplit("/", 1)[0]
    return allowed.get(panel_key)


def main(argv: list[str]) -> int:
    """For the integration tests, which query Prometheus as the dashboards do:

    dashboards.py queries                 the panels' and annotations' expressions, as JSON
                                          [[title, expr], ...] (CQLPULSE_TEST_DASHBOARD: another
                                          dashboard file than the shipped ones)
    dashboards.py substitute WINDOW [NAME=VALUE...]
                                          each expression of the JSON list on stdin with its
                                          variables substituted, as a JSON list
    """
    import os
    import sys

    if argv[:1] == ["queries"]:
        override = os.environ.get("CQLPULSE_TEST_DASHBOARD")
        if override:
            dashboards = [(Path(override), json.loads(Path(override).read_text(encoding="utf-8")))]
        else:
            dashboards = load_dashboards()
        out = [[q.title, q.expr] for _, d in dashboards for q in iter_queries(d)
               if q.kind in ("panel", "annotation")]
    elif argv[:1] == ["substitute"] and len(argv) >= 2:
        values = dict(a.split("=", 1) for a in argv[2:])
        out = [substitute(e, argv[1], values) for e in json.load(sys.stdin)]
    else:
        print(main.__doc__, file=sys.stderr)
        return 2
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))

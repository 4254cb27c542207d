#!/usr/bin/env python3
"""Offline lint of the Grafana dashboards in grafana/dashboards (run by scripts/check-deploy).

Checks, for every dashboard:
  - valid JSON with a uid, a title and a schemaVersion Grafana can migrate (>= 36);
  - the variables datasource (type datasource, Prometheus), job, instance, workload and op;
  - unique panel ids (rows and panels inside collapsed rows included) and a grid that fits in
    24 columns without overlapping panels;
  - every non-row panel has a title, a description, fieldConfig.defaults.unit, the data source
    {"type": "prometheus", "uid": "${datasource}"} on the panel and on each target, and at
    least one target with an expression and a unique refId;
  - every PromQL expression (targets, annotations, variable queries) uses only metric names
    from the catalogue, docs/metrics.md;
  - every range selector in a panel is [$__rate_interval] (or [$__range] for totals over the
    time range), so rates stay right at any scrape interval and zoom level;
  - no data source uid other than ${datasource} (and Grafana's built-in one) is hard-coded.

Options:
  --emit-rules FILE  also write every expression, variables substituted, as a Prometheus rules
                     file, so that `promtool check rules FILE` parses each one (syntax check).
  --rules FILE...    lint the metric names of Prometheus rule files against the catalogue (the
                     rules' own recorded names are allowed). Needs PyYAML.
  --allow-list       instead of the lint, check deploy/checks/dashboard-no-data.txt: each entry
                     names an existing panel or query and gives a reason.
Exit status 0 when clean, 1 on any problem (each printed on its own line).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dashboards as d  # noqa: E402

REQUIRED_VARIABLES = ["datasource", "job", "instance", "workload", "op"]
ALLOWED_RANGES = {"$__rate_interval", "${__rate_interval}", "$__range", "${__range}"}


def lint_dashboard(path: Path, dash: dict, catalogue: dict[str, str]) -> list[str]:
    problems: list[str] = []

    def bad(msg: str) -> None:
        problems.append(f"{path.name}: {msg}")

    if not dash.get("uid"):
        bad("no uid")
    if not dash.get("title"):
        bad("no title")
    schema = dash.get("schemaVersion")
    if not isinstance(schema, int) or schema < 36:
        bad(f"schemaVersion {schema!r}: expected an integer >= 36")

    # Variables.
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    for name in REQUIRED_VARIABLES:
        if name not in variables:
            bad(f"variable ${name} is missing")
    ds_var = variables.get("datasource")
    if ds_var and (ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus"):
        bad("variable $datasource must be of type datasource with query prometheus")
    for name, var in variables.items():
        if var.get("type") != "query":
            continue
        if var.get("datasource") != d.DATASOURCE:
            bad(f"variable ${name}: datasource must be {d.DATASOURCE}")
        text = d.variable_query_text(var)
        promql = d.label_values_to_promql(text)
        if promql is None:
            bad(f"variable ${name}: query {text!r} is not label_values(<selector>, <label>)")
            continue
        for metric in sorted(d.metric_names(promql) - set(catalogue)):
            bad(f"variable ${name}: unknown metric {metric!r}")

    # Panels.
    seen_ids: dict[object, str] = {}
    boxes: list[tuple[str, dict]] = []
    for panel in d.iter_panels(dash):
        pid = panel.get("id")
        title = panel.get("title") or ""
        where = f"panel {pid} {title!r}"
        if not isinstance(pid, int):
            bad(f"{where}: id must be an integer")
        elif pid in seen_ids:
            bad(f"{where}: id {pid} already used by {seen_ids[pid]!r}")
        else:
            seen_ids[pid] = title
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")):
            bad(f"{where}: gridPos needs integer x, y, w, h")
        else:
            if grid["x"] < 0 or grid["w"] <= 0 or grid["x"] + grid["w"] > 24:
                bad(f"{where}: gridPos does not fit in 24 columns: {grid}")
            boxes.append((where, grid))
        if panel.get("type") == "row":
            if not title:
                bad(f"{where}: row without a title")
            continue
        if not title.strip():
            bad(f"{where}: no title")
        if not (panel.get("description") or "").strip():
            bad(f"{where}: no description")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if not unit:
            bad(f"{where}: no fieldConfig.defaults.unit")
        if panel.get("datasource") != d.DATASOURCE:
            bad(f"{where}: datasource must be {d.DATASOURCE}, got {panel.get('datasource')}")
        targets = panel.get("targets") or []
        if not targets:
            bad(f"{where}: no targets")
        refs = set()
        for target in targets:
            ref = target.get("refId")
            if not ref or ref in refs:
                bad(f"{where}: missing or duplicate refId {ref!r}")
            refs.add(ref)
            if target.get("datasource") != d.DATASOURCE:
                bad(f"{where} target {ref}: datasource must be {d.DATASOURCE}")
            expr = target.get("expr") or ""
            if not expr.strip():
                bad(f"{where} target {ref}: empty expr")
                continue
            for metric in sorted(d.metric_names(expr) - set(catalogue)):
                bad(f"{where} target {ref}: unknown metric {metric!r}")
            for rng in d.range_selectors(expr):
                if rng not in ALLOWED_RANGES:
                    bad(f"{where} target {ref}: range [{rng}] must be [$__rate_interval]"
                        " (or [$__range] for a total over the time range)")

    # Overlapping panels (rows are 1 high and full width; the grid only grows downwards).
    for i, (wa, a) in enumerate(boxes):
        for wb, b in boxes[i + 1:]:
            if (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                    and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]):
                bad(f"{wa} overlaps {wb}")

    # Annotations.
    for ann in dash.get("annotations", {}).get("list", []):
        if ann.get("builtIn"):
            continue
        name = ann.get("name")
        if ann.get("datasource") != d.DATASOURCE:
            bad(f"annotation {name!r}: datasource must be {d.DATASOURCE}")
        expr = ann.get("expr") or ""
        if not expr.strip():
            bad(f"annotation {name!r}: no expr")
        for metric in sorted(d.metric_names(expr) - set(catalogue)):
            bad(f"annotation {name!r}: unknown metric {metric!r}")

    # No hard-coded data source anywhere.
    def walk(node, trail):
        if isinstance(node, dict):
            ds = node.get("datasource")
            if isinstance(ds, dict) and ds.get("uid") not in ("${datasource}", "-- Grafana --"):
                bad(f"{trail}: hard-coded datasource {ds}")
            elif isinstance(ds, str) and ds not in ("${datasource}", "$datasource"):
                bad(f"{trail}: hard-coded datasource {ds!r}")
            for k, v in node.items():
                walk(v, f"{trail}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{trail}[{i}]")

    walk(dash, "$")
    return problems


def emit_rules(all_dashboards, out: Path) -> int:
    """Write every query, variables substituted, as recording rules for promtool."""
    rules = []
    for _, dash in all_dashboards:
        for q in d.iter_queries(dash):
            name = "dashboard:" + "".join(c if c.isalnum() else "_" for c in q.key)
            rules.append({"record": name, "expr": d.substitute(q.expr, "1m")})
    doc = {"groups": [{"name": "dashboard-queries", "rules": rules}]}
    # JSON is valid YAML, so no YAML library is needed here.
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return len(rules)


def lint_rule_files(files: list[str], catalogue: dict[str, str]) -> list[str]:
    import yaml  # only this mode needs PyYAML

    problems = []
    docs = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            docs.append((f, yaml.safe_load(fh)))
    recorded = {r["record"] for _, doc in docs for g in doc.get("groups", [])
                for r in g.get("rules", []) if "record" in r}
    known = set(catalogue) | recorded
    for f, doc in docs:
        for g in doc.get("groups", []):
            for r in g.get("rules", []):
                name = r.get("record") or r.get("alert")
                for metric in sorted(d.metric_names(str(r.get("expr", ""))) - known):
                    problems.append(f"{Path(f).name}: rule {name!r}: unknown metric {metric!r}")
    return problems


def check_allow_list(all_dashboards) -> list[str]:
    problems = []
    try:
        allowed = d.load_allow_list()
    except ValueError as exc:
        return [str(exc)]
    keys = set()
    for _, dash in all_dashboards:
        for q in d.iter_queries(dash):
            keys.add(q.key)
            keys.add(q.key.rsplit("/", 1)[0])
    for key in allowed:
        if key not in keys:
            problems.append(f"{d.NO_DATA_ALLOW_LIST.name}: {key!r} names no panel or query")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dashboards", type=Path, default=d.DASHBOARD_DIR)
    ap.add_argument("--catalogue", type=Path, default=d.CATALOGUE)
    ap.add_argument("--emit-rules", type=Path)
    ap.add_argument("--rules", nargs="+", default=[])
    ap.add_argument("--allow-list", action="store_true")
    args = ap.parse_args()

    catalogue = d.load_catalogue(args.catalogue)
    problems: list[str] = []
    if args.rules:
        problems += lint_rule_files(args.rules, catalogue)
    else:
        try:
            all_dashboards = d.load_dashboards(args.dashboards)
        except ValueError as exc:
            print(exc)
            return 1
        if not all_dashboards:
            print(f"no dashboards under {args.dashboards}")
            return 1
        if args.allow_list:
            problems += check_allow_list(all_dashboards)
            if not problems:
                print(f"{d.NO_DATA_ALLOW_LIST.name}: {len(d.load_allow_list())} entries, all known")
        else:
            for path, dash in all_dashboards:
                found = lint_dashboard(path, dash, catalogue)
                problems += found
                if not found:
                    n_panels = sum(1 for p in d.iter_panels(dash) if p.get("type") != "row")
                    print(f"{path.name}: {n_panels} panels, {len(d.iter_queries(dash))} queries: clean")
        if args.emit_rules:
            n = emit_rules(all_dashboards, args.emit_rules)
            print(f"wrote {n} queries to {args.emit_rules}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

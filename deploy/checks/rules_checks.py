"""Coverage of the alerting and recording rules by their test file and the runbook."""

from __future__ import annotations

import re

import yaml

from deploy_common import DEPLOY, RULES, RULES_TEST, bad, problems


def check_rules_coverage() -> None:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    tests = yaml.safe_load(RULES_TEST.read_text(encoding="utf-8"))
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    records = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    for g in rules["groups"]:
        for r in g["rules"]:
            if "alert" in r:
                if not r.get("for"):
                    bad(f"rules: alert {r['alert']} has no `for:`")
                ann = r.get("annotations", {})
                if not ann.get("summary") or not ann.get("description"):
                    bad(f"rules: alert {r['alert']} needs summary and description annotations")
                if not r.get("labels", {}).get("severity"):
                    bad(f"rules: alert {r['alert']} has no severity label")
    # Every alert has a runbook entry: a "#### AlertName" heading in deploy/README.md.
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for a in sorted(alerts):
        if not re.search(rf"^#### {re.escape(a)}$", readme, re.M):
            bad(f"deploy/README.md: no runbook entry '#### {a}'")
    fired, quiet, evaluated = set(), set(), set()
    for t in tests.get("tests", []):
        for a in t.get("alert_rule_test", []) or []:
            (fired if a.get("exp_alerts") else quiet).add(a["alertname"])
        for e in t.get("promql_expr_test", []) or []:
            evaluated.update(n for n in records if re.search(rf"(?<![\w:]){re.escape(n)}(?![\w:])",
                                                              e["expr"]))
    for a in sorted(alerts - fired):
        bad(f"rules test: alert {a} is never tested firing")
    for a in sorted(alerts - quiet):
        bad(f"rules test: alert {a} is never tested not firing (exp_alerts: [])")
    for r in sorted(records - evaluated):
        bad(f"rules test: recording rule {r} is never evaluated by a promql_expr_test")
    if not problems:
        print(f"{len(alerts)} alerts and {len(records)} recording rules covered")

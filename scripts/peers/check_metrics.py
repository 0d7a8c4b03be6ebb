"""Checks that every costcast metric the Grafana dashboard and the Prometheus rules query is one
/metrics actually serves, so neither silently shows "No data". Usage:
check_metrics.py METRICS.txt DASHBOARD.json RULES.yaml"""
import json
import re
import sys

import yaml

metrics_text, dashboard_path, rules_path = sys.argv[1:4]
served = set(re.findall(r"^# TYPE (costcast_[a-z_]+) ", open(metrics_text).read(), re.M))
if not served:
    sys.exit(f"{metrics_text}: no costcast metrics served")
wanted = {}


def walk(panels):
    for p in panels:
        for t in p.get("targets", []):
            for name in re.findall(r"costcast_[a-z_]+", t["expr"]):
                wanted.setdefault(name, []).append(f"{dashboard_path}: panel {p['title']!r}")
        walk(p.get("panels", []))


dashboard = json.load(open(dashboard_path))
walk(dashboard["panels"])
for group in yaml.safe_load(open(rules_path))["groups"]:
    for rule in group["rules"]:
        for name in re.findall(r"costcast_[a-z_]+", rule["expr"]):
            wanted.setdefault(name, []).append(f"{rules_path}: alert {rule['alert']}")
missing = {n: w for n, w in wanted.items() if n not in served}
for name, where in sorted(missing.items()):
    print(f"ERROR {name} is not served by /metrics; used by {', '.join(where)}")
if missing:
    sys.exit(1)
print(f"INFO {len(wanted)} metrics used by the dashboard and rules, all {len(served)} served names checked")

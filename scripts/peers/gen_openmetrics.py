#!/usr/bin/env python3
"""Writes the Kubernetes usage history the Prometheus tests query, as OpenMetrics for
`promtool tsdb create-blocks-from openmetrics`.

usage: gen_openmetrics.py OUT.om

Ten days, 2026-01-01 to 2026-01-10 (UTC), one sample per hour, with round numbers so tests can
assert exact results:
  payments (team checkout):  2 pods × 1 core, 2 GiB requested, all day; 1 request/s served
  search   (team discovery): 1 pod  × 1 core, 4 GiB requested, all day
  batch    (team data):      1 pod  × 2 cores, 8 GiB requested, 00:00-11:00 only
  ml       (team research):  1 pod  × 1 GPU requested, 06:00-11:00 only
  nodes: 2 × 4 allocatable cores, 2 × 16 GiB allocatable memory, 2 GPUs on one node
Per day that is 48 / 24 / 24 core-hours and 96 / 96 / 96 GiB-hours, of 192 core-hours and
768 GiB-hours allocatable, and 6 of 48 GPU-hours.
"""
import sys
from datetime import datetime, timezone

out = sys.argv[1]
start = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())
hours = [start + 3600 * h for h in range(10 * 24)]
GIB = 1024 ** 3

pods = [  # namespace, team, pod, cores, GiB, hours of the day it runs
    ("payments", "checkout", "payments-api-0", 1.0, 2, range(24)),
    ("payments", "checkout", "payments-api-1", 1.0, 2, range(24)),
    ("search", "discovery", "search-0", 1.0, 4, range(24)),
    ("batch", "data", "batch-worker-0", 2.0, 8, range(12)),
]

lines = ["# TYPE kube_pod_container_resource_requests gauge"]
for resource, index, scale in (("cpu", 3, 1), ("memory", 4, GIB)):
    for ns, team, pod, *values in pods:
        value, running = values[index - 3] * scale, values[2]
        for t in hours:
            if (t - start) // 3600 % 24 in running:
                lines.append(
                    f'kube_pod_container_resource_requests{{namespace="{ns}",pod="{pod}",container="app",'
                    f'team="{team}",resource="{resource}"}} {value} {t}'
                )
for t in hours:
    if 6 <= (t - start) // 3600 % 24 < 12:
        lines.append(
            'kube_pod_container_resource_requests{namespace="ml",pod="trainer-0",container="app",'
            f'team="research",resource="nvidia_com_gpu"}} 1 {t}'
        )
lines.append("# TYPE kube_node_status_allocatable gauge")
for resource, value in (("cpu", 4), ("memory", 16 * GIB)):
    for node in ("node-a", "node-b"):
        for t in hours:
            lines.append(f'kube_node_status_allocatable{{node="{node}",resource="{resource}"}} {value} {t}')
for t in hours:
    lines.append(f'kube_node_status_allocatable{{node="node-a",resource="nvidia_com_gpu"}} 2 {t}')
lines.append("# TYPE http_requests counter")
for i, t in enumerate(hours):
    lines.append(f'http_requests_total{{namespace="payments",team="checkout"}} {3600 * i} {t}')
lines.append("# EOF")
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"wrote {out}: {len(lines) - 4} samples")

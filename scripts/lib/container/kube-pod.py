#!/usr/bin/env python3
"""The pods of deploy/kubernetes in a form `podman kube play` (podman 4.3) runs, for
scripts/container.

    kube-pod.py DIR OUT HOST_PORT

Writes OUT: the ConfigMap with the spec, as written, and pod 0 of the StatefulSet: its pod
template, unchanged but for what a single podman host cannot give and must say (printed):
  - the pod is named cqlpulse-0, as the StatefulSet names its first pod; the downward-API
    value of CQLPULSE_POD_INDEX (the pod-index label) becomes the literal "0";
  - the optional Secret of the control token is left out (control stays disabled);
  - the ConfigMap's contact point (a cluster DNS name) and its replication (three replicas)
    are overridden in the environment for the one-node stand-in reached as `scylla`;
  - the metrics port gets hostPort HOST_PORT on 127.0.0.1, so the probe can reach it.
"""

import sys
from pathlib import Path

import yaml


def main() -> int:
    folder, out, host_port = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    configmap = yaml.safe_load((folder / "configmap-spec.yaml").read_text(encoding="utf-8"))
    sts = yaml.safe_load((folder / "statefulset.yaml").read_text(encoding="utf-8"))
    template = sts["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{sts['metadata']['name']}-0",
                     "labels": dict(template["metadata"].get("labels", {}))},
        "spec": template["spec"],
    }
    notes = [f"pod {pod['metadata']['name']}: the StatefulSet's pod template"]
    for container in pod["spec"]["containers"]:
        env = []
        for var in container.get("env", []):
            source = var.get("valueFrom", {})
            if "fieldRef" in source:
                env.append({"name": var["name"], "value": "0"})
                notes.append(f"{var['name']}: \"0\" (the pod's ordinal) instead of the downward API")
            elif source.get("secretKeyRef", {}).get("optional"):
                notes.append(f"{var['name']}: left out (an optional Secret, none here)")
            else:
                env.append(var)
        env += [
            {"name": "CQLPULSE__CLUSTER__CONTACT_POINTS", "value": '["scylla:9042"]'},
            {"name": "CQLPULSE__SCHEMA__REPLICATION",
             "value": "\"{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}\""},
        ]
        notes.append("contact point scylla:9042 and replication 1 (one stand-in node), by env")
        container["env"] = env
        for port in container.get("ports", []):
            if port.get("name") == "metrics":
                port["hostPort"] = host_port
                port["hostIP"] = "127.0.0.1"
                notes.append(f"port metrics published on 127.0.0.1:{host_port}")
    out.write_text(yaml.safe_dump_all([configmap, pod], sort_keys=False), encoding="utf-8")
    for note in notes:
        print(f"  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

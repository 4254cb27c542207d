#!/usr/bin/env python3
"""deploy/docker-compose.yml as this machine can run it, for scripts/container.

    compose-standin.py COMPOSE OUT PORT_BASE CQLPULSE_IMAGE CASSANDRA_IMAGE PROMETHEUS_IMAGE

The compose file stays the source of truth: every service, command, environment variable,
health check, volume and the Prometheus configuration are used as written. What differs is
printed (one line each) and is only what this machine cannot provide or must not collide with:
  - scylla runs the Cassandra stand-in image (ScyllaDB's cannot be pulled); its command is
    ScyllaDB's flags, dropped; its data volume is used as the node's state folder;
  - prometheus runs Debian's Prometheus in an image laid out like prom/prometheus;
  - cqlpulse runs the image just built from deploy/Dockerfile (no build: step);
  - grafana is left out (it cannot be installed here);
  - published ports move to 127.0.0.1:PORT_BASE+n (the usual ones may be taken);
  - relative bind mounts become absolute (OUT lives elsewhere).
"""

import sys
from pathlib import Path

import yaml


def main() -> int:
    compose, out, port_base, cqlpulse_image, cassandra_image, prometheus_image = sys.argv[1:7]
    base = Path(compose).resolve().parent
    doc = yaml.safe_load(Path(compose).read_text(encoding="utf-8"))
    services = doc["services"]
    for needed in ("scylla", "cqlpulse", "prometheus"):
        if needed not in services:
            sys.exit(f"compose-standin: {compose} has no service {needed!r}")
    changes = []

    if services.pop("grafana", None) is not None:
        changes.append("grafana: left out (Grafana cannot be installed on this machine)")
        doc.get("volumes", {}).pop("grafana-data", None)

    scylla = services["scylla"]
    scylla["image"] = cassandra_image
    scylla.pop("command", None)
    data = next((v.split(":")[1] for v in scylla.get("volumes", []) if v.startswith("scylla-data:")),
                "/var/lib/cassandra")
    scylla.setdefault("environment", {}).update({"CASSANDRA_DATA": data, "CASSANDRA_FAST": "1"})
    changes.append(f"scylla: image {cassandra_image} (Cassandra 5.0 standing in for ScyllaDB), "
                   f"no command (ScyllaDB's flags), state in its volume at {data}")

    services["prometheus"]["image"] = prometheus_image
    changes.append(f"prometheus: image {prometheus_image} (Debian's Prometheus)")

    cqlpulse = services["cqlpulse"]
    cqlpulse.pop("build", None)
    cqlpulse["image"] = cqlpulse_image
    changes.append(f"cqlpulse: image {cqlpulse_image} (built from deploy/Dockerfile by this phase)")

    offsets = {"cqlpulse": 0, "prometheus": 1, "scylla": 2}
    for name, svc in services.items():
        ports = []
        for entry in svc.get("ports", []) or []:
            container_port = str(entry).rsplit(":", 1)[-1]
            host_port = int(port_base) + offsets[name]
            ports.append(f"127.0.0.1:{host_port}:{container_port}")
            changes.append(f"{name}: publishes {container_port} on 127.0.0.1:{host_port} "
                           f"instead of {entry}")
        if ports:
            svc["ports"] = ports
        volumes = []
        for entry in svc.get("volumes", []) or []:
            source, _, rest = entry.partition(":")
            if source.startswith("."):
                entry = f"{(base / source).resolve()}:{rest}"
            volumes.append(entry)
        if volumes:
            svc["volumes"] = volumes

    Path(out).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    for change in changes:
        print(f"  {change}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

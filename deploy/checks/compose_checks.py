"""Static checks of deploy/docker-compose.yml, the files it mounts, and its cqlpulse spec."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import yaml

from deploy_common import COMPOSE, DOCKERFILE, METRICS_PORT, REPO, bad, check_pinned, rel
from dockerfile_checks import dockerfile_instructions


def parse_port(entry) -> tuple[str, int | None, int]:
    """(host ip, host port, container port) of a compose port entry."""
    if isinstance(entry, dict):
        return (entry.get("host_ip", ""), int(entry["published"]) if entry.get("published")
                else None, int(entry["target"]))
    text = str(entry).split("/", 1)[0]
    parts = text.rsplit(":", 2)
    if len(parts) == 1:
        return "", None, int(parts[0])
    if len(parts) == 2:
        return "", int(parts[0]), int(parts[1])
    return parts[0], int(parts[1]), int(parts[2])


def parse_volume(entry) -> tuple[str, str, str, bool]:
    """(type, source, target, read_only) of a compose volume entry."""
    if isinstance(entry, dict):
        return (entry.get("type", "volume"), entry.get("source", ""), entry["target"],
                bool(entry.get("read_only")))
    parts = str(entry).split(":")
    src, dst = parts[0], parts[1] if len(parts) > 1 else parts[0]
    mode = parts[2] if len(parts) > 2 else ""
    kind = "bind" if src.startswith((".", "/", "~")) else "volume"
    return kind, src, dst, "ro" in mode.split(",")


def host_path(base: Path, svc: dict, container_path: str) -> Path | None:
    """The host file behind a container path, through the service's bind mounts."""
    best = None
    for entry in svc.get("volumes", []) or []:
        kind, src, dst, _ = parse_volume(entry)
        if kind != "bind":
            continue
        dst = dst.rstrip("/")
        if container_path == dst or container_path.startswith(dst + "/"):
            if best is None or len(dst) > len(best[1]):
                best = (src, dst)
    if best is None:
        return None
    return (base / best[0] / container_path[len(best[1]):].lstrip("/")).resolve()


def image_file(container_path: str) -> Path | None:
    """The file of the repository that deploy/Dockerfile copies to container_path in its
    runtime stages (COPY SRC DEST, not --from), so a service can run what the image carries."""
    for word, rest in dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")):
        parts = rest.split()
        if word == "COPY" and len(parts) == 2 and not parts[0].startswith("--") \
                and parts[1] == container_path:
            return (REPO / parts[0]).resolve()
    return None


def spec_path(base: Path, svc: dict, container_path: str) -> Path | None:
    return host_path(base, svc, container_path) or image_file(container_path)


def check_compose() -> None:
    base = COMPOSE.parent
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = doc.get("services") or {}
    declared_volumes = set((doc.get("volumes") or {}).keys())
    for name in ("scylla", "cqlpulse", "prometheus", "grafana"):
        if name not in services:
            bad(f"compose: service {name!r} is missing")
    host_ports: dict[tuple[str, int], str] = {}
    for name, svc in services.items():
        where = f"compose: service {name}"
        image = svc.get("image")
        if not image:
            bad(f"{where}: no image (a built service needs a pinned image name too)")
        else:
            check_pinned(where, image)
        build = svc.get("build")
        if build:
            ctx = base / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile",
                                                                               "Dockerfile")
            if not ctx.is_dir():
                bad(f"{where}: build context {rel(ctx)} does not exist")
            elif not (ctx / dockerfile).is_file():
                bad(f"{where}: dockerfile {dockerfile} not found in context {rel(ctx)}")
        for entry in svc.get("ports", []) or []:
            try:
                ip, hp, cp = parse_port(entry)
            except (ValueError, KeyError):
                bad(f"{where}: cannot parse port {entry!r}")
                continue
            if hp is not None:
                if (ip, hp) in host_ports:
                    bad(f"{where}: host port {hp} already published by {host_ports[(ip, hp)]}")
                host_ports[(ip, hp)] = name
        for entry in svc.get("volumes", []) or []:
            kind, src, dst, ro = parse_volume(entry)
            if kind == "bind":
                path = (base / src).resolve()
                if not path.exists():
                    bad(f"{where}: bind-mounted host path {src} ({rel(path)}) does not exist")
                if not ro:
                    bad(f"{where}: bind mount {src}:{dst} should be read-only (:ro)")
            elif kind == "volume" and src not in declared_volumes:
                bad(f"{where}: named volume {src!r} is not declared under volumes:")
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, opts in deps.items():
            if dep not in services:
                bad(f"{where}: depends_on unknown service {dep!r}")
            elif (opts or {}).get("condition") == "service_healthy" and \
                    not services[dep].get("healthcheck"):
                bad(f"{where}: waits for {dep} to be healthy, but {dep} has no healthcheck")

    def container_ports(name):
        return {parse_port(p)[2] for p in services.get(name, {}).get("ports", []) or []}

    for name, port in (("cqlpulse", METRICS_PORT), ("prometheus", 9090), ("grafana", 3000)):
        if name in services and port not in container_ports(name):
            bad(f"compose: service {name} does not publish container port {port}")

    scylla = services.get("scylla", {})
    cmd = scylla.get("command") or []
    cmd = shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]
    for flag, value in (("--smp", "1"), ("--memory", "1G"), ("--developer-mode", "1")):
        if flag not in cmd or cmd.index(flag) + 1 >= len(cmd) or cmd[cmd.index(flag) + 1] != value:
            bad(f"compose: scylla command should pass {flag} {value}")
    if "cqlsh" not in json.dumps(scylla.get("healthcheck", {})):
        bad("compose: scylla healthcheck should run a CQL query with cqlsh")

    cq = services.get("cqlpulse", {})
    deps = cq.get("depends_on") or {}
    if not isinstance(deps, dict) or (deps.get("scylla") or {}).get("condition") != "service_healthy":
        bad("compose: cqlpulse must depend on scylla with condition service_healthy")
    env = cq.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    if "scylla:9042" not in str(env.get("CQLPULSE__CLUSTER__CONTACT_POINTS", "")):
        bad("compose: cqlpulse should point CQLPULSE__CLUSTER__CONTACT_POINTS at scylla:9042")
    if "CQLPULSE_CONTROL_TOKEN" not in env:
        bad("compose: cqlpulse should set CQLPULSE_CONTROL_TOKEN")
    ccmd = cq.get("command") or []
    ccmd = shlex.split(ccmd) if isinstance(ccmd, str) else [str(c) for c in ccmd]
    if len(ccmd) >= 2 and ccmd[0] == "run":
        spec = spec_path(base, cq, ccmd[1])
        if spec is None:
            bad(f"compose: cqlpulse spec {ccmd[1]} is neither under a bind mount nor in the image")
        elif not spec.is_file():
            bad(f"compose: cqlpulse spec {ccmd[1]} is {rel(spec)} on the host, which does not exist")
        if "--listen" in ccmd and not ccmd[ccmd.index("--listen") + 1].endswith(f":{METRICS_PORT}"):
            bad(f"compose: cqlpulse --listen should use port {METRICS_PORT}")
        listen = str(env.get("CQLPULSE__METRICS__LISTEN", f"0.0.0.0:{METRICS_PORT}")).strip('"')
        if not listen.startswith("0.0.0.0:") or not listen.endswith(f":{METRICS_PORT}"):
            bad(f"compose: CQLPULSE__METRICS__LISTEN should be 0.0.0.0:{METRICS_PORT}")
        if cq.get("read_only") and not any(
                parse_volume(v)[2] == "/var/lib/cqlpulse" for v in cq.get("volumes", []) or []):
            bad("compose: a read-only cqlpulse needs a volume at /var/lib/cqlpulse for its outputs")
    else:
        bad("compose: cqlpulse command should be ['run', SPEC, ...]")

    # Prometheus: its config is mounted, and scrapes compose services on published ports.
    prom = services.get("prometheus", {})
    prom_cfg = host_path(base, prom, "/etc/prometheus/prometheus.yml")
    if prom_cfg is None or not prom_cfg.is_file():
        bad("compose: /etc/prometheus/prometheus.yml is not mounted from deploy/prometheus")
    else:
        cfg = yaml.safe_load(prom_cfg.read_text(encoding="utf-8"))
        targets = [t for sc in cfg.get("scrape_configs", [])
                   for st in sc.get("static_configs", []) for t in st.get("targets", [])]
        if f"cqlpulse:{METRICS_PORT}" not in targets:
            bad(f"prometheus.yml: no scrape target cqlpulse:{METRICS_PORT}")
        for t in targets:
            host = t.rsplit(":", 1)[0]
            if host not in services and host != "localhost":
                bad(f"prometheus.yml: target {t} is not a compose service")
        for scrape in cfg.get("scrape_configs", []):
            if scrape.get("job_name") == "cqlpulse" and \
                    scrape.get("scrape_interval", cfg.get("global", {}).get("scrape_interval")) != "5s":
                bad("prometheus.yml: the cqlpulse job should be scraped every 5s")
        for rf in cfg.get("rule_files", []):
            if not (prom_cfg.parent / rf).is_file():
                bad(f"prometheus.yml: rule file {rf} not found next to it")

    # Grafana: anonymous viewer, provisioning and dashboards mounted where the files say.
    gr = services.get("grafana", {})
    genv = gr.get("environment") or {}
    if str(genv.get("GF_AUTH_ANONYMOUS_ENABLED", "")).lower() != "true" or \
            genv.get("GF_AUTH_ANONYMOUS_ORG_ROLE") != "Viewer":
        bad("compose: grafana should enable anonymous access with the Viewer role")
    ds_file = host_path(base, gr, "/etc/grafana/provisioning/datasources/prometheus.yml")
    if ds_file is None or not ds_file.is_file():
        bad("compose: grafana datasource provisioning is not mounted")
    else:
        ds = yaml.safe_load(ds_file.read_text(encoding="utf-8"))
        urls = [d.get("url", "") for d in ds.get("datasources", [])]
        if "http://prometheus:9090" not in urls:
            bad(f"grafana datasource: url should be http://prometheus:9090, got {urls}")
        for d in ds.get("datasources", []):
            if not d.get("uid"):
                bad(f"grafana datasource {d.get('name')!r}: no fixed uid")
    prov = host_path(base, gr, "/etc/grafana/provisioning/dashboards/cqlpulse.yml")
    if prov is None or not prov.is_file():
        bad("compose: grafana dashboard provisioning is not mounted")
    else:
        pv = yaml.safe_load(prov.read_text(encoding="utf-8"))
        for p in pv.get("providers", []):
            path = p.get("options", {}).get("path", "")
            host = host_path(base, gr, path)
            if host is None or not host.is_dir() or not list(host.glob("*.json")):
                bad(f"grafana dashboard provider path {path} maps to no folder of dashboards")
    home = genv.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        hp = host_path(base, gr, home)
        if hp is None or not hp.is_file():
            bad(f"compose: grafana home dashboard {home} is not a mounted file")



RUN_ONLY_FLAGS = {"--linger": 1, "--summary-json": 1, "--hdr-log": 1, "--status-every": 1,
                  "--no-http": 0}


def check_compose_spec(binary: str) -> None:
    base = COMPOSE.parent
    svc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["cqlpulse"]
    cmd = svc.get("command") or []
    cmd = shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]
    if len(cmd) < 2 or cmd[0] != "run":
        bad("compose: cqlpulse command should be ['run', SPEC, ...]")
        return
    spec = spec_path(base, svc, cmd[1])
    if spec is None or not spec.is_file():
        bad(f"compose: spec {cmd[1]} is neither a mounted file nor one the image carries")
        return
    args = [binary, "check", str(spec)]
    rest = cmd[2:]
    i = 0
    while i < len(rest):
        if rest[i] in RUN_ONLY_FLAGS:
            i += 1 + RUN_ONLY_FLAGS[rest[i]]
            continue
        args.append(rest[i])
        i += 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("CQLPULSE")}
    raw = svc.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(e.split("=", 1) for e in raw)
    for k, v in raw.items():
        env[k] = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v))
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    print((proc.stdout + proc.stderr).strip())
    if proc.returncode != 0:
        bad(f"compose: `{' '.join(args[1:])}` with the service's environment failed "
            f"(status {proc.returncode})")

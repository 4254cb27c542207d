#!/usr/bin/env python3
"""Static checks of deploy/ that no off-the-shelf validator covers (run by scripts/check-deploy).

    static_checks.py compose      deploy/docker-compose.yml and the files it mounts
    static_checks.py dockerfile   deploy/Dockerfile and .dockerignore
    static_checks.py k8s          deploy/kubernetes: cross-resource consistency and the
                                  Prometheus Operator resources (no CRD schema is available
                                  offline, so they are checked structurally here); the
                                  Indexed Job variant in deploy/kubernetes-job
    static_checks.py rules-coverage
                                  every alert of cqlpulse-rules.yml is tested firing and not
                                  firing, every recording rule is evaluated, by the test file;
                                  every alert has a runbook entry in deploy/README.md
    static_checks.py spec FILE    print the TOML spec embedded in the ConfigMap to FILE after
                                  parsing it
    static_checks.py compose-spec BIN
                                  run `BIN check` on the compose cqlpulse service's spec with
                                  its environment overrides and flags (${VAR:-default} taken
                                  at the default)

Each prints one line per problem and exits 1 if there is any. Needs PyYAML.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "kubernetes"
RULES = DEPLOY / "prometheus" / "cqlpulse-rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "cqlpulse-rules.test.yml"
METRICS_PORT = 9464
SPEC_PATH = "/etc/cqlpulse/spec.toml"

problems: list[str] = []


def bad(msg: str) -> None:
    problems.append(msg)


def rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p)


# ------------------------------------------------------------------------------- images

def image_tag(ref: str) -> str | None:
    """The tag of an image reference (None when untagged); a digest counts as a tag."""
    if "@" in ref:
        return ref.split("@", 1)[1]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def check_pinned(where: str, ref: str) -> None:
    tag = image_tag(ref)
    if not tag:
        bad(f"{where}: image {ref!r} has no tag (pin an explicit version)")
    elif tag == "latest" or "$" in tag:
        bad(f"{where}: image {ref!r} is not pinned to an explicit version")


# ------------------------------------------------------------------------------ compose

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


# --------------------------------------------------------------------------- dockerfile

def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    out = []
    buf = ""
    for line in text.splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue  # comment inside a continued instruction
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def check_dockerfile() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    ins = dockerfile_instructions(text)
    args: dict[str, str] = {}
    stages: list[dict] = []
    for word, rest in ins:
        if word == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif word == "FROM":
            parts = rest.split()
            parts = [p for p in parts if not p.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append({"image": image, "name": name, "ins": []})
        elif stages:
            stages[-1]["ins"].append((word, rest))
    if len(stages) < 2:
        bad("Dockerfile: expected a multi-stage build (builder + runtime)")
        return
    names = {s["name"] for s in stages}
    for s in stages:
        if s["image"] not in names:
            check_pinned(f"Dockerfile: FROM {s['image']}", s["image"])
    builder = stages[0]
    if not re.fullmatch(r"rust:1\.\d+(\.\d+)?-bookworm", builder["image"]):
        bad(f"Dockerfile: builder should be rust:1.x-bookworm, got {builder['image']}")
    copies = [r for w, r in builder["ins"] if w == "COPY"]
    manifest = next((i for i, r in enumerate(copies) if "Cargo.toml" in r and "Cargo.lock" in r), None)
    src = next((i for i, r in enumerate(copies) if r.split()[0] == "src"), None)
    if manifest is None or src is None or manifest > src:
        bad("Dockerfile: copy Cargo.toml and Cargo.lock (dependency cache layer) before src/")
    for w, r in builder["ins"]:
        if w == "COPY" and not r.startswith("--from"):
            for item in r.split()[:-1]:
                if not (REPO / item).exists():
                    bad(f"Dockerfile: COPY source {item} does not exist in the build context")
    check_target_stubs(builder["ins"])
    runtimes = [s for s in stages[1:] if s["name"] != builder["name"]]
    for s in runtimes:
        where = f"Dockerfile stage {s['name'] or s['image']}"
        if not re.search(r"(debian:12[.\d]*-slim|debian:bookworm.*-slim|distroless/cc-debian12)",
                         s["image"]):
            bad(f"{where}: runtime should be Debian 12 (bookworm, the builder's glibc)")
        users = [r for w, r in s["ins"] if w == "USER"]
        if not users or users[-1].split(":")[0] in ("root", "0"):
            bad(f"{where}: must switch to a non-root USER")
        if str(METRICS_PORT) not in " ".join(r for w, r in s["ins"] if w == "EXPOSE"):
            bad(f"{where}: EXPOSE {METRICS_PORT} missing")
        entry = [r for w, r in s["ins"] if w == "ENTRYPOINT"]
        if not entry or json.loads(entry[-1]) != ["cqlpulse"]:
            bad(f'{where}: ENTRYPOINT should be ["cqlpulse"]')
        cmd = [r for w, r in s["ins"] if w == "CMD"]
        if not cmd or json.loads(cmd[-1])[:2] != ["run", SPEC_PATH]:
            bad(f'{where}: CMD should start with ["run", "{SPEC_PATH}"]')
        if not any(w == "COPY" and "--from=" + (builder["name"] or "0") in r for w, r in s["ins"]):
            bad(f"{where}: should copy the binary from the {builder['name']} stage")
        if "distroless" in s["image"]:
            if any(w == "HEALTHCHECK" for w, _ in s["ins"]):
                bad(f"{where}: distroless has no shell or curl for a HEALTHCHECK")
        elif not any(w == "HEALTHCHECK" for w, _ in s["ins"]):
            bad(f"{where}: a HEALTHCHECK on /healthz is expected")
    ignore = REPO / ".dockerignore"
    if not ignore.is_file():
        bad(".dockerignore is missing at the repository root (the build context)")
    else:
        pats = {l.strip().rstrip("/") for l in ignore.read_text().splitlines()
                if l.strip() and not l.startswith("#")}
        for must in ("target", ".git"):
            if must not in pats:
                bad(f".dockerignore should exclude {must}/")
        for needed in ("Cargo.toml", "Cargo.lock", "src"):
            if needed in pats or "*" in pats:
                bad(f".dockerignore excludes {needed}, which the image build needs")


STUBS = DEPLOY / "cargo-target-stubs.sh"


def declared_target_paths(manifest: dict) -> set[str]:
    """The source files cargo insists on when it parses the manifest: every explicit target's
    path, or cargo's default for its kind and name."""
    defaults = {"test": "tests/{}.rs", "example": "examples/{}.rs", "bench": "benches/{}.rs",
                "bin": "src/bin/{}.rs"}
    paths = set()
    for kind, pattern in defaults.items():
        for target in manifest.get(kind, []):
            paths.add(target.get("path") or pattern.format(target.get("name", "")))
    if "lib" in manifest:
        paths.add(manifest["lib"].get("path", "src/lib.rs"))
    return paths


def check_target_stubs(builder_ins: list[tuple[str, str]]) -> None:
    """The dependency-cache step (Cargo.toml and Cargo.lock only) must stub every target
    Cargo.toml declares, or cargo refuses the manifest and the image does not build."""
    runs = [r for w, r in builder_ins if w == "RUN"]
    first_build = next((i for i, r in enumerate(runs) if "cargo build" in r), None)
    if first_build is None or "cargo-target-stubs" not in runs[first_build]:
        bad("Dockerfile: the first cargo build must run after cargo-target-stubs (stubs for "
            "every target Cargo.toml declares)")
    manifest = tomllib.loads((REPO / "Cargo.toml").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "Cargo.toml").write_text((REPO / "Cargo.toml").read_text())
        proc = subprocess.run(["sh", str(STUBS), "Cargo.toml"], cwd=scratch,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            bad(f"{rel(STUBS)} failed: {proc.stderr.strip()}")
            return
        for path in sorted(declared_target_paths(manifest)):
            if not (Path(scratch) / path).is_file():
                bad(f"{rel(STUBS)}: Cargo.toml declares a target at {path}, which it does not "
                    "stub (the image's dependency-cache step would fail to parse the manifest)")


def dockerfile_runtime_uid() -> int | None:
    ins = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    users = [r for w, r in ins if w == "USER"]
    try:
        return int(users[-1].split(":")[0]) if users else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------- kubernetes

PODMONITOR_ENDPOINT_KEYS = {
    "port", "portNumber", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout",
    "honorLabels", "honorTimestamps", "relabelings", "metricRelabelings", "bearerTokenSecret",
    "basicAuth", "authorization", "oauth2", "tlsConfig", "followRedirects", "enableHttp2",
    "filterRunning", "proxyUrl", "trackTimestampsStaleness", "scrapeProtocols",
}
PODMONITOR_SPEC_KEYS = {
    "selector", "namespaceSelector", "podMetricsEndpoints", "jobLabel", "podTargetLabels",
    "sampleLimit", "targetLimit", "labelLimit", "labelNameLengthLimit", "labelValueLengthLimit",
    "keepDroppedTargets", "attachMetadata", "scrapeClass", "scrapeProtocols",
    "fallbackScrapeProtocol", "bodySizeLimit", "selectorMechanism",
}
RELABEL_KEYS = {"sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement",
                "action"}
RELABEL_ACTIONS = {"replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep",
                   "lowercase", "uppercase", "keepequal", "dropequal",
                   "Replace", "Keep", "Drop", "HashMod", "LabelMap", "LabelDrop", "LabelKeep",
                   "Lowercase", "Uppercase", "KeepEqual", "DropEqual"}
DURATION = re.compile(r"^(0|(\d+(ms|s|m|h|d|w|y))+)$")


def load_k8s() -> tuple[list[str], list[dict]]:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    resources = kust.get("resources", [])
    docs = []
    for r in resources:
        path = K8S / r
        if not path.is_file():
            bad(f"kustomization: resource {r} does not exist")
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                doc["__file__"] = r
                docs.append(doc)
    return resources, docs


def check_pod_template(where: str, spec: dict, shards_field: str, shards, index_field: str,
                       configmaps: dict) -> tuple[dict, dict]:
    """Checks the pod template of a workload running cqlpulse shards (the StatefulSet, the
    Indexed Job); returns (pod labels, container ports by name)."""
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"].get("labels", {})
    selector = spec.get("selector", {}).get("matchLabels", pod_labels)  # a Job's is generated
    if not set(selector.items()) <= set(pod_labels.items()):
        bad(f"{where}: selector does not match the pod template labels")
    containers = pod["containers"]
    c = containers[0]
    env = {e["name"]: e for e in c.get("env", [])}
    if env.get("CQLPULSE__SHARD__INDEX", {}).get("value") != "auto":
        bad(f"{where}: CQLPULSE__SHARD__INDEX should be auto")
    count = env.get("CQLPULSE__SHARD__COUNT", {}).get("value")
    if str(shards) != str(count):
        bad(f"{where}: {shards_field} ({shards}) != CQLPULSE__SHARD__COUNT ({count})")
    field = env.get("CQLPULSE_POD_INDEX", {}).get("valueFrom", {}).get("fieldRef", {}) \
        .get("fieldPath")
    if field != index_field:
        bad(f"{where}: CQLPULSE_POD_INDEX should come from {index_field}")
    if "CQLPULSE_CONTROL_TOKEN" not in env:
        bad(f"{where}: CQLPULSE_CONTROL_TOKEN is not set (from a Secret)")
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    if ports.get("metrics") != METRICS_PORT:
        bad(f"{where}: container port 'metrics' should be {METRICS_PORT}")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") not in ("metrics", METRICS_PORT):
            bad(f"{where}: {probe} should GET {path} on the metrics port")
    res = c.get("resources", {})
    if not res.get("requests") or not res.get("limits", {}).get("memory"):
        bad(f"{where}: set resource requests and a memory limit")
    csc = c.get("securityContext", {})
    psc = pod.get("securityContext", {})
    if not (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
        bad(f"{where}: runAsNonRoot is not set")
    if csc.get("readOnlyRootFilesystem") is not True:
        bad(f"{where}: readOnlyRootFilesystem should be true")
    if csc.get("allowPrivilegeEscalation") is not False:
        bad(f"{where}: allowPrivilegeEscalation should be false")
    if "ALL" not in csc.get("capabilities", {}).get("drop", []):
        bad(f"{where}: capabilities should drop ALL")
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    image_uid = dockerfile_runtime_uid()
    if uid is not None and image_uid is not None and uid != image_uid:
        bad(f"{where}: runAsUser {uid} differs from the image's USER {image_uid}")
    args = [str(a) for a in c.get("args", [])]
    if args[:2] != ["run", SPEC_PATH]:
        bad(f"{where}: args should start with run {SPEC_PATH}")
    if "--listen" in args and not args[args.index("--listen") + 1].endswith(f":{METRICS_PORT}"):
        bad(f"{where}: --listen port differs from the metrics port")
    # A finished run must stay scrapeable in phase done for a while (the rules then know it
    # ended normally and page nobody); under a StatefulSet it must never exit (restarts).
    if "--linger" not in args:
        bad(f"{where}: args should pass --linger (a finished run is scraped in phase done)")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    spec_mount = mounts.get(str(Path(SPEC_PATH).parent))
    if not spec_mount or not spec_mount.get("readOnly"):
        bad(f"{where}: {Path(SPEC_PATH).parent} should be mounted read-only")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        if m["name"] not in volumes:
            bad(f"{where}: volumeMount {m['name']} has no volume")
    if spec_mount and spec_mount["name"] in volumes:
        cm_name = volumes[spec_mount["name"]].get("configMap", {}).get("name")
        cm = configmaps.get(cm_name)
        if cm is None:
            bad(f"{where}: spec ConfigMap {cm_name!r} is not among the resources")
        elif Path(SPEC_PATH).name not in cm.get("data", {}):
            bad(f"ConfigMap {cm_name}: no key {Path(SPEC_PATH).name}")
        else:
            try:
                tomllib.loads(cm["data"][Path(SPEC_PATH).name])
            except tomllib.TOMLDecodeError as exc:
                bad(f"ConfigMap {cm_name}: spec.toml is not valid TOML: {exc}")

    return pod_labels, ports


def check_shard_count_replacement(kust: dict, kind: str, field: str) -> None:
    """The shard count has one source: kustomize copies `field` of the workload into
    CQLPULSE__SHARD__COUNT."""
    env_path = "spec.template.spec.containers.[name=cqlpulse].env.[name=CQLPULSE__SHARD__COUNT].value"
    for r in kust.get("replacements", []) or []:
        src = r.get("source", {})
        if src.get("kind") == kind and src.get("fieldPath") == field:
            paths = [p for t in r.get("targets", []) if t.get("select", {}).get("kind") == kind
                     for p in t.get("fieldPaths", [])]
            if env_path in paths:
                return
    bad(f"kustomization: no replacement copies {kind} {field} into CQLPULSE__SHARD__COUNT")


JOB_DIR = DEPLOY / "kubernetes-job"


def check_job() -> None:
    """deploy/kubernetes-job: the Indexed Job variant for finite runs, checked like the
    StatefulSet (same pod template rules) plus what a Job needs."""
    kust = yaml.safe_load((JOB_DIR / "kustomization.yaml").read_text(encoding="utf-8"))
    resources = kust.get("resources", [])
    if "../kubernetes" not in resources:
        bad("kubernetes-job/kustomization: should build on the base (resources: ../kubernetes)")
    patches = json.dumps(kust.get("patches", []))
    if "$patch: delete" not in patches or "StatefulSet" not in patches:
        bad("kubernetes-job/kustomization: should delete the base's StatefulSet")
    jobs = [d for r in resources if (JOB_DIR / r).is_file()
            for d in yaml.safe_load_all((JOB_DIR / r).read_text(encoding="utf-8"))
            if d and d.get("kind") == "Job"]
    if len(jobs) != 1:
        bad(f"kubernetes-job/: expected one Job, found {len(jobs)}")
        return
    job = jobs[0]
    spec = job["spec"]
    base_docs = load_k8s()[1]
    configmaps = {d["metadata"]["name"]: d for d in base_docs if d.get("kind") == "ConfigMap"}
    check_pod_template("Job", spec, "completions", spec.get("completions"),
                       "metadata.annotations['batch.kubernetes.io/job-completion-index']",
                       configmaps)
    if spec.get("completionMode") != "Indexed":
        bad("Job: completionMode should be Indexed (one completion index per shard)")
    if spec.get("parallelism") != spec.get("completions"):
        bad("Job: parallelism should equal completions (every shard runs at once)")
    pod = spec["template"]["spec"]
    if pod.get("restartPolicy") != "Never":
        bad("Job: restartPolicy should be Never (podFailurePolicy needs it)")
    rules = spec.get("podFailurePolicy", {}).get("rules", [])
    failing = {c for r in rules if r.get("action") == "FailJob"
               for c in r.get("onExitCodes", {}).get("values", [])}
    if not {2, 3} <= failing:
        bad("Job: podFailurePolicy should fail the Job on exit 2 (bad spec) and 3 (aborted)")
    check_shard_count_replacement(kust, "Job", "spec.completions")
    for r in kust.get("replacements", []) or []:
        if r.get("source", {}).get("fieldPath") == "spec.completions" and any(
                "spec.parallelism" in t.get("fieldPaths", []) for t in r.get("targets", [])):
            break
    else:
        bad("kubernetes-job/kustomization: no replacement copies spec.completions into spec.parallelism")


def check_k8s() -> None:
    resources, docs = load_k8s()
    files = {p.name for p in K8S.glob("*.y*ml")} - {"kustomization.yaml"}
    for f in sorted(files - set(resources)):
        bad(f"kustomization: {f} is not listed in resources")
    for d in docs:
        if d.get("metadata", {}).get("namespace"):
            bad(f"{d['__file__']}: {d['kind']} sets a namespace (manifests are namespace-less)")
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    sts_list = by_kind.get("StatefulSet", [])
    if len(sts_list) != 1:
        bad(f"expected one StatefulSet, found {len(sts_list)}")
        return
    sts = sts_list[0]
    spec = sts["spec"]
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    pod_labels, ports = check_pod_template(
        "StatefulSet", spec, "replicas", spec.get("replicas"),
        "metadata.labels['apps.kubernetes.io/pod-index']", configmaps)
    check_shard_count_replacement(
        yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8")),
        "StatefulSet", "spec.replicas")

    services = by_kind.get("Service", [])
    headless = [s for s in services if s["spec"].get("clusterIP") == "None"]
    if not any(s["metadata"]["name"] == spec.get("serviceName") for s in headless):
        bad(f"StatefulSet serviceName {spec.get('serviceName')!r} is not a headless Service")
    if not any(s["spec"].get("clusterIP") != "None" for s in services):
        bad("no metrics Service (non-headless) found")
    for s in services:
        name = s["metadata"]["name"]
        if not set(s["spec"].get("selector", {}).items()) <= set(pod_labels.items()):
            bad(f"Service {name}: selector does not match the pods")
        for p in s["spec"].get("ports", []):
            tp = p.get("targetPort", p.get("port"))
            if isinstance(tp, str) and tp not in ports:
                bad(f"Service {name}: targetPort {tp!r} is not a container port name")
            elif isinstance(tp, int) and tp not in ports.values():
                bad(f"Service {name}: targetPort {tp} is not a container port")

    # Prometheus Operator resources: checked structurally (no CRD schema offline).
    pms = by_kind.get("PodMonitor", [])
    if len(pms) != 1:
        bad(f"expected one PodMonitor, found {len(pms)}")
    for pm in pms:
        where = f"PodMonitor {pm.get('metadata', {}).get('name')}"
        if pm.get("apiVersion") != "monitoring.coreos.com/v1":
            bad(f"{where}: apiVersion should be monitoring.coreos.com/v1")
        if set(pm) - {"apiVersion", "kind", "metadata", "spec", "__file__"}:
            bad(f"{where}: unexpected top-level keys {sorted(set(pm) - {'apiVersion', 'kind', 'metadata', 'spec', '__file__'})}")
        pspec = pm.get("spec", {})
        for k in sorted(set(pspec) - PODMONITOR_SPEC_KEYS):
            bad(f"{where}: unknown spec field {k!r}")
        sel = pspec.get("selector", {}).get("matchLabels", {})
        if not sel or not set(sel.items()) <= set(pod_labels.items()):
            bad(f"{where}: selector.matchLabels does not select the cqlpulse pods")
        eps = pspec.get("podMetricsEndpoints") or []
        if not eps:
            bad(f"{where}: no podMetricsEndpoints")
        for ep in eps:
            for k in sorted(set(ep) - PODMONITOR_ENDPOINT_KEYS):
                bad(f"{where}: unknown podMetricsEndpoints field {k!r}")
            if ep.get("port") not in ports:
                bad(f"{where}: port {ep.get('port')!r} is not a named container port")
            if ep.get("path", "/metrics") != "/metrics":
                bad(f"{where}: path should be /metrics")
            for k in ("interval", "scrapeTimeout"):
                if k in ep and not DURATION.match(str(ep[k])):
                    bad(f"{where}: {k} {ep[k]!r} is not a Prometheus duration")
            for rl in ep.get("relabelings", []) + ep.get("metricRelabelings", []):
                for k in sorted(set(rl) - RELABEL_KEYS):
                    bad(f"{where}: unknown relabeling field {k!r}")
                if rl.get("action", "replace") not in RELABEL_ACTIONS:
                    bad(f"{where}: unknown relabeling action {rl.get('action')!r}")
                if not isinstance(rl.get("sourceLabels", []), list):
                    bad(f"{where}: sourceLabels must be a list")
    for pr in by_kind.get("PrometheusRule", []):
        where = f"PrometheusRule {pr.get('metadata', {}).get('name')}"
        if pr.get("apiVersion") != "monitoring.coreos.com/v1":
            bad(f"{where}: apiVersion should be monitoring.coreos.com/v1")
        groups = pr.get("spec", {}).get("groups")
        if not groups or set(pr.get("spec", {})) != {"groups"}:
            bad(f"{where}: spec should hold exactly `groups`")
        for g in groups or []:
            for r in g.get("rules", []):
                if not r.get("expr") or not (r.get("record") or r.get("alert")):
                    bad(f"{where}: group {g.get('name')}: a rule without record/alert or expr")
    dash_cms = [cm for cm in configmaps.values()
                if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    if not dash_cms:
        bad('no ConfigMap labelled grafana_dashboard: "1"')
    for cm in dash_cms:
        for key, text in cm.get("data", {}).items():
            try:
                json.loads(text)
            except json.JSONDecodeError as exc:
                bad(f"ConfigMap {cm['metadata']['name']}: {key} is not valid JSON: {exc}")


def spec_from_configmap(out: Path) -> None:
    _, docs = load_k8s()
    for d in docs:
        if d.get("kind") == "ConfigMap" and "spec.toml" in d.get("data", {}):
            text = d["data"]["spec.toml"]
            tomllib.loads(text)
            out.write_text(text, encoding="utf-8")
            return
    bad("no ConfigMap with a spec.toml key")


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


# ------------------------------------------------------------------------ rules coverage

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


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cmd = sys.argv[1]
    if cmd == "compose":
        check_compose()
    elif cmd == "dockerfile":
        check_dockerfile()
    elif cmd == "k8s":
        check_k8s()
        check_job()
    elif cmd == "rules-coverage":
        check_rules_coverage()
    elif cmd == "compose-spec" and len(sys.argv) == 3:
        check_compose_spec(sys.argv[2])
    elif cmd == "spec" and len(sys.argv) == 3:
        spec_from_configmap(Path(sys.argv[2]))
    else:
        print(__doc__)
        return 2
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

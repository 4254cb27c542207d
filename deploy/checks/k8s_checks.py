"""Static checks of deploy/kubernetes (cross-resource consistency, the Prometheus Operator
resources) and the Indexed Job variant in deploy/kubernetes-job."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

from deploy_common import DEPLOY, K8S, METRICS_PORT, SPEC_PATH, bad
from dockerfile_checks import dockerfile_runtime_uid


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

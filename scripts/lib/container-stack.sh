# shellcheck shell=bash
# Sourced by scripts/container: the compose stack (Cassandra standing in for ScyllaDB,
# Prometheus, cqlpulse from the image just built) and its checks, `podman kube play` of the
# Kubernetes manifests, and the clean-up. Reads the names and ports scripts/container sets.

pass() { echo "PASS  $*"; }

# ---------------------------------------------------------------- helpers

compose() {
    podman-compose -p "$PROJECT" -f "$PODMAN_STATE/compose.yml" "$@" >>"$LOG_DIR/compose.log" 2>&1 ||
        { tail -n 20 "$LOG_DIR/compose.log" >&2; die "podman-compose $* failed (log: $LOG_DIR/compose.log)"; }
}
container_of() { echo "${PROJECT}_$1_1"; }

# http_code URL: the status of a GET (000 when nothing answers).
http_code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" || true; }

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every second until it succeeds.
wait_until() {
    local limit="$1" what="$2" deadline
    shift 2
    deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
    echo "container: $what after $((SECONDS - deadline + limit)) s"
}
answers_200() { [[ "$(http_code "$1")" == 200 ]]; }
healthy() { podman healthcheck run "$1" >/dev/null 2>&1; }
running() { [[ "$(podman inspect --format '{{.State.Status}}' "$1" 2>/dev/null)" == running ]]; }

# prom EXPR: the first value of an instant query to the Prometheus container.
prom() {
    curl -s -m 5 --data-urlencode "query=$1" "http://127.0.0.1:$PORT_PROMETHEUS/api/v1/query" |
        python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}
prom_positive() { awk -v v="$(prom "$1")" 'BEGIN { exit !(v != "" && v + 0 > 0) }'; }

cql_in_db() { podman exec "$(container_of scylla)" cqlsh -e "$1"; }

# ---------------------------------------------------------------- the Cassandra image

# The jars scripts/cassandra resolves (CASSANDRA_LIB_DIR, as scripts/test sets it), the JMX
# exporter from Maven Central (cached in .cache/jmx-exporter), the config library and the
# stand-in's own files, assembled as a build context.
build_cassandra_image() {
    local lib ctx="$PODMAN_STATE/context/cassandra" jmx="$REPO_DIR/.cache/jmx-exporter"
    local jmx_version=1.0.1 jar
    lib="${CASSANDRA_LIB_DIR:-$REPO_DIR/.cassandra/lib-${CASSANDRA_VERSION:-5.0.8}}"
    CASSANDRA_LIB_DIR="$lib" scripts/cassandra resolve >/dev/null
    jar="$jmx/jmx_prometheus_javaagent-$jmx_version.jar"
    if [[ ! -f "$jar" ]]; then
        echo "container: resolving io.prometheus.jmx:jmx_prometheus_javaagent:$jmx_version"
        mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
            "-Dartifact=io.prometheus.jmx:jmx_prometheus_javaagent:$jmx_version" \
            "-DoutputDirectory=$jmx" >"$LOG_DIR/mvn-jmx.log" 2>&1 || die "resolving the JMX exporter failed (log: $LOG_DIR/mvn-jmx.log)"
    fi
    rm -rf "$ctx"
    mkdir -p "$ctx/jmx-exporter"
    cp -al "$lib" "$ctx/lib" 2>/dev/null || cp -a "$lib" "$ctx/lib"
    rm -f "$ctx/lib/.resolved"
    cp "$jar" "$ctx/jmx-exporter/jmx_prometheus_javaagent.jar"
    cp scripts/lib/container/jmx-exporter.yml "$ctx/jmx-exporter/config.yml"
    cp scripts/lib/cassandra-config.sh scripts/lib/cql.py scripts/lib/container/cassandra-entrypoint.sh \
        scripts/lib/container/cqlsh "$ctx/"
    podman build --pull=never --format docker -f scripts/lib/container/cassandra.Containerfile \
        -t "$CASSANDRA_IMAGE" "$ctx" >"$LOG_DIR/build-cassandra.log" 2>&1 ||
        { tail -n 20 "$LOG_DIR/build-cassandra.log" >&2; die "building $CASSANDRA_IMAGE failed"; }
    echo "container: $CASSANDRA_IMAGE ready ($(image_size "$CASSANDRA_IMAGE"))"
}

# ---------------------------------------------------------------- the stack

cmd_stack() {
    mkdir -p "$LOG_DIR"
    : >"$LOG_DIR/compose.log"
    podman image exists "$IMAGE" || die "no $IMAGE: run '$0 build' first"
    build_cassandra_image
    echo "container: deploy/docker-compose.yml as run here (Grafana is left out: it cannot be installed on this machine):"
    python3 scripts/lib/container/compose-standin.py deploy/docker-compose.yml "$PODMAN_STATE/compose.yml" \
        "$PORT_BASE" "$IMAGE" "$CASSANDRA_IMAGE" "$PROMETHEUS_IMAGE"
    cmd_clean >/dev/null 2>&1 || true

    # podman-compose 1.0 (Debian's, podman 4.3) ignores `condition: service_healthy`: start the
    # database and Prometheus, wait for the database's own compose health check, then cqlpulse.
    compose up -d scylla prometheus
    wait_until 420 "scylla (Cassandra) healthy: its compose health check (cqlsh) passes" \
        healthy "$(container_of scylla)" || die "scylla never became healthy: $(podman logs --tail 30 "$(container_of scylla)" 2>&1)"
    CQLPULSE_RATE=500 compose up -d --no-deps cqlpulse
    local cq
    cq="$(container_of cqlpulse)"
    wait_until 120 "cqlpulse ready: /readyz answers 200 through 127.0.0.1:$PORT_CQLPULSE" \
        answers_200 "http://127.0.0.1:$PORT_CQLPULSE/readyz" ||
        die "cqlpulse never became ready: $(podman logs --tail 30 "$cq" 2>&1)"
    pass "cqlpulse reaches Cassandra by service name (scylla:9042) and is ready: /readyz 200 through the published port"
    [[ "$(http_code "http://127.0.0.1:$PORT_CQLPULSE/healthz")" == 200 ]] || die "/healthz does not answer 200"
    pass "/healthz answers 200 through the published port"
    check_image_runtime "$cq"
    check_prometheus
    check_extra_containers
    check_drain "$cq"
}

# The runtime image as compose runs it: non-root, read-only root, its HEALTHCHECK healthy.
check_image_runtime() {
    local cq="$1" out
    [[ "$(podman exec "$cq" id -u)" == 10001 ]] || die "cqlpulse does not run as uid 10001"
    pass "the container runs as uid 10001 (non-root)"
    [[ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$cq")" == true ]] || die "the root filesystem is not read-only"
    out="$(podman exec "$cq" sh -c 'touch /usr/local/bin/x' 2>&1)" && die "the root filesystem accepted a write"
    [[ "$out" == *"Read-only file system"* ]] || die "writing to the root failed, but not as read-only: $out"
    pass "the root filesystem is read-only (a write fails: Read-only file system)"
    [[ "$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")" == *cqlpulse-healthcheck* ]] ||
        die "the image carries no HEALTHCHECK (built without --format docker?)"
    wait_until 60 "the image's HEALTHCHECK reports healthy" healthy "$cq" || die "HEALTHCHECK unhealthy"
    pass "the image's HEALTHCHECK (podman healthcheck run) reports healthy"
}

# Prometheus in its container scrapes both jobs of deploy/prometheus/prometheus.yml.
check_prometheus() {
    wait_until 90 "Prometheus scrapes cqlpulse (up{job=\"cqlpulse\"} = 1, requests counted)" \
        prom_positive 'up{job="cqlpulse"} * on() group_left sum(cqlpulse_requests_total{outcome="ok"})' ||
        die "Prometheus does not scrape cqlpulse: $(curl -s "http://127.0.0.1:$PORT_PROMETHEUS/api/v1/targets" | head -c 1500)"
    pass "Prometheus (in its container) scrapes cqlpulse:9464: $(prom 'sum(cqlpulse_requests_total{outcome="ok"})') requests ok so far"
    wait_until 60 "Prometheus scrapes the database job (up{job=\"scylla\"} = 1)" \
        prom_positive 'up{job="scylla"} * on() group_left count({job="scylla",__name__=~"org_apache_cassandra_metrics_clientrequest.*"})' ||
        die "Prometheus does not scrape the database job: $(curl -s "http://127.0.0.1:$PORT_PROMETHEUS/api/v1/targets" | head -c 1500)"
    pass "Prometheus scrapes the database job scylla:9180: $(prom 'count({job="scylla"})') series of Cassandra's client-request and storage metrics"
    [[ "$(curl -s "http://127.0.0.1:$PORT_PROMETHEUS/api/v1/rules" | grep -o '"type":"recording"' | wc -l)" -gt 0 ]] ||
        die "Prometheus loaded none of the cqlpulse rules"
    pass "Prometheus loaded the cqlpulse rules (cqlpulse-rules.yml beside its config)"
}

# More containers of the images, on the compose network, each in a keyspace of its own:
#   - the runtime image's default command, the listener moved by CQLPULSE__METRICS__LISTEN;
#   - the runtime image with `--listen` on the command line;
#   - the distroless target, default command;
# each healthy where it listens (the HEALTHCHECK follows the address), then stopped cleanly.
check_extra_containers() {
    local env_listen="$PROJECT-env-listen" flag_listen="$PROJECT-flag-listen" distroless="$PROJECT-distroless" c
    local common=(--network "$NETWORK" --read-only --label cqlpulse.ci=1
        -e 'CQLPULSE__CLUSTER__CONTACT_POINTS=["scylla:9042"]' -e CQLPULSE__LOAD__RATE=50)
    podman run -d --name "$env_listen" "${common[@]}" -e CQLPULSE__SCHEMA__KEYSPACE=cqlpulse_env_listen \
        -e CQLPULSE__METRICS__LISTEN=0.0.0.0:9555 -p "127.0.0.1:$PORT_IMAGE:9555" "$IMAGE" >/dev/null
    podman run -d --name "$flag_listen" "${common[@]}" -e CQLPULSE__SCHEMA__KEYSPACE=cqlpulse_flag_listen \
        "$IMAGE" run /etc/cqlpulse/spec.toml --listen 0.0.0.0:9556 >/dev/null
    podman run -d --name "$distroless" "${common[@]}" -e CQLPULSE__SCHEMA__KEYSPACE=cqlpulse_distroless \
        -p "127.0.0.1:$((PORT_BASE + 2)):9464" "$IMAGE_DISTROLESS" >/dev/null
    wait_until 120 "the runtime image's default command ready on CQLPULSE__METRICS__LISTEN's port 9555" \
        answers_200 "http://127.0.0.1:$PORT_IMAGE/readyz" || die "$env_listen never became ready: $(podman logs --tail 20 "$env_listen" 2>&1)"
    for c in "$env_listen" "$flag_listen"; do
        wait_until 60 "$c: HEALTHCHECK healthy" healthy "$c" ||
            die "$c: HEALTHCHECK unhealthy on a moved listener: $(podman healthcheck run "$c" 2>&1; podman logs --tail 10 "$c" 2>&1)"
    done
    pass "HEALTHCHECK follows the listener: healthy on :9555 (CQLPULSE__METRICS__LISTEN) and :9556 (--listen)"
    wait_until 120 "the distroless image ready" answers_200 "http://127.0.0.1:$((PORT_BASE + 2))/readyz" ||
        die "the distroless image never became ready: $(podman logs --tail 20 "$distroless" 2>&1)"
    [[ "$(podman inspect --format '{{.Config.User}}' "$distroless")" == 65532:65532 ]] || die "distroless does not run as 65532"
    pass "the distroless target runs (uid 65532, read-only root) and is ready through its published port"
    for c in "$env_listen" "$flag_listen" "$distroless"; do
        podman stop -t 30 "$c" >/dev/null
        [[ "$(podman inspect --format '{{.State.ExitCode}}' "$c")" == 0 ]] || die "$c exited $(podman inspect --format '{{.State.ExitCode}}' "$c") on SIGTERM"
        podman rm "$c" >/dev/null
    done
    pass "each stops on SIGTERM with exit code 0"
}

# `podman stop` (SIGTERM) drains: exit 0, the summary in the log and in the volume, and every
# insert it counts as ok is a row in the table (sequence keys: one row per insert).
check_drain() {
    local cq="$1" code log volume summary ok sent rows
    podman stop -t 40 "$cq" >/dev/null
    code="$(podman inspect --format '{{.State.ExitCode}}' "$cq")"
    [[ "$code" == 0 ]] || die "cqlpulse exited $code on SIGTERM: $(podman logs --tail 30 "$cq" 2>&1)"
    # Into a variable first: grep -q ends early, and under pipefail the writer's SIGPIPE fails a pipe.
    log="$(podman logs "$cq" 2>&1)"
    grep -q "cqlpulse: workload \`container\`" <<<"$log" || die "no summary in the container's log: $(tail -n 15 <<<"$log")"
    pass "podman stop (SIGTERM) drains: exit code 0, the summary table in the log"
    volume="$(podman inspect --format '{{range .Mounts}}{{if eq .Destination "/var/lib/cqlpulse"}}{{.Name}}{{end}}{{end}}' "$cq")"
    summary="$(podman volume inspect --format '{{.Mountpoint}}' "$volume")/summary.json"
    [[ -s "$summary" ]] || die "no summary.json in the volume $volume"
    read -r ok sent < <(python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(s["ok"], s["sent"])' "$summary")
    rows="$(cql_in_db "SELECT count(*) FROM $KEYSPACE.kv")"
    # Each insert has its own key: every ok one is a row; a failed one may have landed too.
    [[ "$ok" -gt 0 && "$rows" -ge "$ok" && "$rows" -le "$sent" ]] ||
        die "the summary counts $ok inserts ok of $sent sent, the table holds $rows rows"
    pass "summary.json written to the volume $volume (read-only root): $ok inserts ok of $sent sent, $rows rows in $KEYSPACE.kv"
}

# ---------------------------------------------------------------- Kubernetes

# `podman kube play` of the StatefulSet's pod (as pod cqlpulse-0) with its ConfigMap, on the
# compose network: kube play runs Pods, Deployments and ConfigMaps, not StatefulSets, Services
# or the Prometheus Operator's kinds (those stay with the static validation of check-deploy).
cmd_kube() {
    local yaml="$PODMAN_STATE/kube.yml" pod=cqlpulse-0 ctr
    mkdir -p "$LOG_DIR"
    podman container exists "$(container_of scylla)" ||
        die "kube: the database of the stack is not running (run '$0' or '$0 stack' first)"
    podman tag "$IMAGE" localhost/cqlpulse:0.1.0
    python3 scripts/lib/container/kube-pod.py deploy/kubernetes "$yaml" "$PORT_KUBE"
    podman kube play --network "$NETWORK" "$yaml" >"$LOG_DIR/kube.log" 2>&1 ||
        { cat "$LOG_DIR/kube.log" >&2; die "podman kube play failed"; }
    ctr="$pod-cqlpulse"
    wait_until 120 "the kube-played pod ready: /readyz 200 on its hostPort 127.0.0.1:$PORT_KUBE" \
        answers_200 "http://127.0.0.1:$PORT_KUBE/readyz" ||
        die "the kube-played pod never became ready: $(podman logs --tail 20 "$ctr" 2>&1)"
    [[ "$(podman exec "$ctr" id -u)" == 10001 ]] || die "the pod's container does not run as 10001"
    [[ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$ctr")" == true ]] || die "the pod's root is not read-only"
    [[ "$(podman exec "$ctr" cat /etc/cqlpulse/spec.toml)" == *'name = "kv-mixed"'* ]] || die "the ConfigMap's spec is not mounted"
    pass "podman kube play: StatefulSet pod + ConfigMap spec run, ready, uid 10001, read-only root"
    podman kube down "$yaml" >>"$LOG_DIR/kube.log" 2>&1 || die "podman kube down failed"
}

# ---------------------------------------------------------------- clean-up

# Everything in this private podman store belongs to this script: remove every pod,
# container, volume and network (images and the build cache stay for the next run).
cmd_clean() {
    local net
    podman pod rm -af -t 10 >/dev/null 2>&1 || true
    podman rm -af -t 10 >/dev/null 2>&1 || true
    podman volume prune -f >/dev/null 2>&1 || true
    for net in $(podman network ls --format '{{.Name}}' 2>/dev/null); do
        [[ "$net" == podman ]] || podman network rm -f "$net" >/dev/null 2>&1 || true
    done
    echo "container: no container, pod, volume or network left ($(podman ps -aq | wc -l) containers)"
}

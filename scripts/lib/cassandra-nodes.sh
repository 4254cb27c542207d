# shellcheck shell=bash
# scripts/cassandra's node helpers: processes, ports, CQL on one node (scripts/lib/cql.py),
# readiness, launching a node and the first login. Sourced; uses the script's settings.
# ---------------------------------------------------------------- process helpers

# True while pid is a live Cassandra JVM (a recycled pid or a zombie does not count).
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q "CassandraDaemon"
}

# True once pid has fully exited (gone, or a zombie nobody reaped yet): its ports are free.
# (While a killed JVM tears down, its cmdline is already empty but its sockets are open.)
exited() {
    kill -0 "$1" 2>/dev/null || return 0
    # A zombie leader is not enough: a JVM's main thread exits first while its other threads
    # still shut down and hold the node's ports. Gone means no thread left but the leader.
    [[ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" == Z ]] &&
        [[ "$(find "/proc/$1/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" -le 1 ]]
}

# Prints the pid of node n if it runs, or fails.
node_pid() {
    local pid file
    file="$(pid_file "$1")"
    [[ -f "$file" ]] || return 1
    pid="$(cat "$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    echo "$pid"
}

show_tail() {
    if [[ -s "$1" ]]; then
        echo "---- last 40 lines of $1" >&2
        tail -n 40 "$1" >&2
    fi
}

port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

rss_of() {
    awk '/^VmRSS:/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

check_node() {
    if ! [[ "$1" =~ ^[0-9]+$ ]] || (( $1 < 1 || $1 > NODES )); then
        die "no node '$1': this cluster has nodes 1..$NODES (see $CLUSTER_ENV)"
    fi
}

# cql N TIMEOUT STATEMENT...: runs statements on node N, with TLS and a login when it needs them.
cql() {
    local n="$1" timeout="$2"
    shift 2
    local -a env=()
    if [[ "$TLS" == 1 ]]; then
        env+=("CQL_TLS_CA=$TLS_DIR/ca.pem" "CQL_TLS_CERT=$TLS_DIR/client.pem" "CQL_TLS_KEY=$TLS_DIR/client.key")
    fi
    if [[ "$AUTH" == 1 ]]; then
        env+=("CQL_USER=${CQL_USER:-cassandra}" "CQL_PASSWORD=${CQL_PASSWORD:-cassandra}")
    fi
    env "${env[@]}" "$(python)" "$SCRIPT_DIR/lib/cql.py" "$(node_host "$n")" "$PORT" "$timeout" "$@"
}

# Node n counts as up and normal when it answers CQL and sees every node of the cluster
# NORMAL with its native transport ready (the virtual table of its gossip state: the CQL
# equivalent of `nodetool status` showing UN everywhere, without a JVM per check).
node_ready() {
    local n="$1" out
    out="$(cql "$n" 5 "SELECT address, status_with_port, rpc_ready FROM system_views.gossip_info" 2>/dev/null)" || return 1
    [[ "$(awk -F'\t' '$2 ~ /^NORMAL/ && $3 == "true"' <<<"$out" | wc -l)" -eq "$NODES" ]]
}

# Node n's generation as node m's gossip sees it (to know that m saw n restart).
generation_seen() {
    local m="$1" n="$2"
    cql "$m" 5 "SELECT generation, status_with_port, rpc_ready FROM system_views.gossip_info WHERE address = '$(node_host "$n")' AND port = $STORAGE_PORT" 2>/dev/null \
        | awk -F'\t' '$2 ~ /^NORMAL/ && $3 == "true" { print $1 }'
}

launch_node() {
    local n="$1" java="$2" dir host pid
    dir="$(node_dir "$n")"
    host="$(node_host "$n")"
    node_pid "$n" >/dev/null && die "node $n is already running (pid $(node_pid "$n"))"
    port_open "$host" "$PORT" && die "port $PORT on $host is already in use by another process (not node $n); stop it first"
    port_open "$host" "$STORAGE_PORT" && die "storage port $STORAGE_PORT on $host is already in use by another process; stop it first"
    port_open 127.0.0.1 "$(jmx_port "$n")" && die "JMX port $(jmx_port "$n") on 127.0.0.1 is already in use (set CASSANDRA_JMX_PORT)"
    [[ -f "$dir/conf/cassandra.yaml" ]] || die "node $n has no configuration ($dir/conf); run '$0 start' first"
    jvm_options "$n" "$java"
    [[ -f "$dir/logs/system.log" ]] && mv -f "$dir/logs/system.log" "$dir/logs/system.log.prev"
    [[ -f "$dir/logs/stdout.log" ]] && mv -f "$dir/logs/stdout.log" "$dir/logs/stdout.log.prev"
    (
        cd "$dir" || exit 1
        exec setsid nohup "$java" "${JVM[@]}" -cp "$LIB_DIR/*" \
            org.apache.cassandra.service.CassandraDaemon \
            >"$dir/logs/stdout.log" 2>&1 </dev/null
    ) &
    pid=$!
    echo "$pid" >"$(pid_file "$n")"
    # Until the subshell has exec'd the JVM its command line is this script's, and `alive`
    # (which wait_for asks) would report the node dead: on a loaded machine a restart once
    # failed that way with empty logs. Wait for the exec, or for the process to be gone.
    local deadline=$(( $(date +%s) + 30 ))
    until alive "$pid" || ! kill -0 "$pid" 2>/dev/null || (( $(date +%s) >= deadline )); do
        sleep 0.05
    done
}

# wait_for CONDITION NODES...: polls CONDITION (a function of a node) until every node passes,
# failing fast when a node's process dies.
wait_for() {
    local condition="$1" n pid deadline pending
    shift
    deadline=$(( $(date +%s) + START_TIMEOUT ))
    while true; do
        pending=()
        for n in "$@"; do
            if ! pid="$(node_pid "$n")"; then
                echo "cassandra node $n ($(node_host "$n")) died during start-up" >&2
                show_tail "$(node_dir "$n")/logs/system.log"
                show_tail "$(node_dir "$n")/logs/stdout.log"
                exit 1
            fi
            "$condition" "$n" || pending+=("$n")
        done
        [[ ${#pending[@]} -eq 0 ]] && return 0
        if (( $(date +%s) >= deadline )); then
            echo "cassandra: node(s) ${pending[*]} not ready within ${START_TIMEOUT} s (still running; see '$0 logs --node ${pending[0]}', stop with '$0 stop')" >&2
            show_tail "$(node_dir "${pending[0]}")/logs/system.log"
            exit 1
        fi
        sleep 0.5
    done
}

# Whether peer m's gossip carries node RESTARTED with the generation RESTARTED_GENERATION.
peer_sees_restart() { [[ "$(generation_seen "$1" "$RESTARTED")" == "$RESTARTED_GENERATION" ]]; }

# A node answers CQL when a statement runs, or when it refuses the login only because the
# replicas of system_auth are not up yet (exit 3: a restarted cluster whose roles need QUORUM).
answers_cql() {
    port_open "$(node_host "$1")" "$PORT" || return 1
    local status=0
    cql "$1" 5 "SELECT release_version FROM system.local" >/dev/null 2>&1 || status=$?
    [[ $status == 0 || $status == 3 ]]
}

# With --auth: the role the tests log in as, allowed to create and use keyspaces; on a
# cluster, the auth keyspace replicated to every node so a node down does not lock logins out.
setup_auth() {
    local password statements=()
    mkdir -p "$AUTH_DIR"
    chmod 700 "$AUTH_DIR"
    if [[ ! -s "$AUTH_DIR/password" ]]; then
        (umask 077; od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$AUTH_DIR/password")
    fi
    password="$(cat "$AUTH_DIR/password")"
    if (( NODES > 1 )); then
        statements+=("ALTER KEYSPACE system_auth WITH replication = {'class': 'SimpleStrategy', 'replication_factor': $NODES}")
    fi
    statements+=(
        "CREATE ROLE IF NOT EXISTS $TEST_ROLE WITH LOGIN = true AND PASSWORD = '$password'"
        "ALTER ROLE $TEST_ROLE WITH PASSWORD = '$password'"
        "GRANT ALL PERMISSIONS ON ALL KEYSPACES TO $TEST_ROLE"
    )
    # The default superuser is created a moment after CQL opens: retry the first login.
    local deadline=$(( $(date +%s) + 60 ))
    until CQL_CONSISTENCY=QUORUM cql 1 30 "${statements[@]}" >/dev/null 2>"$AUTH_DIR/setup.err"; do
        if (( $(date +%s) >= deadline )); then
            cat "$AUTH_DIR/setup.err" >&2
            die "creating the test role $TEST_ROLE failed"
        fi
        sleep 0.5
    done
    rm -f "$AUTH_DIR/setup.err"
}

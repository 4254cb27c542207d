# shellcheck shell=bash
# The peers of issue 24, sourced by scripts/bench (`scripts/bench peers [OPS]` runs only this):
# cqlpulse against the floor (bench/driver_loop.rs), cql-stress (ScyllaDB's Rust
# cassandra-stress) and scylla-bench on one insert, in interleaved rounds, one client thread
# each, whole-process CPU per op (user + system from /usr/bin/time, start-up included) and
# peak RSS:
#   - unthrottled, PEER_OPS inserts (default 500000), 128 in flight;
#   - at the fixed rates BENCH_RATES (default 2000 and 20000 ops/s), BENCH_FIXED_SECS each;
#   - user-space instructions per op, unthrottled, when valgrind is installed
#     (instructions_section).
# The insert: a bigint key and a 100-byte blob at consistency ONE (config/bench-fixed.toml).
# cql-stress's user profiles take only blob partition keys, so it writes its standard table
# (a 10-byte blob key and one 100-byte blob column); scylla-bench writes its own (bigint
# partition and clustering keys, a 100-byte blob), one row per partition.
#
# Where the peers are found (each one that is missing is left out, saying how to get it):
#   CQL_STRESS     the cql-stress-cassandra-stress binary (default $PEERS_DIR/...)
#   SCYLLA_BENCH   the scylla-bench binary (default $PEERS_DIR/scylla-bench)
#   PEERS_DIR      default ~/.cache/cqlpulse-peers/bin: outside the clone, since neither peer
#                  is part of this project
# Uses from scripts/bench: BIN, THREADS, REPEAT, OUT, per_op, median, ratio.

PEERS_DIR="${PEERS_DIR:-$HOME/.cache/cqlpulse-peers/bin}"
CQL_STRESS="${CQL_STRESS:-$PEERS_DIR/cql-stress-cassandra-stress}"
SCYLLA_BENCH="${SCYLLA_BENCH:-$PEERS_DIR/scylla-bench}"
PEER_OPS="${PEER_OPS:-500000}"
PEER_SECS="${BENCH_FIXED_SECS:-20}"

peers_missing() {
    local missing=0
    if [[ ! -x $CQL_STRESS ]]; then
        missing=1
        echo "bench: cql-stress not found ($CQL_STRESS): build the cql-stress-cassandra-stress binary of" \
            "github.com/scylladb/cql-stress as its README says (it needs Debian's libclang-dev; the stable" \
            "Rust toolchain builds it) and put it there, or set CQL_STRESS" >&2
    fi
    if [[ ! -x $SCYLLA_BENCH ]]; then
        missing=1
        echo "bench: scylla-bench not found ($SCYLLA_BENCH): build github.com/scylladb/scylla-bench with" \
            "the Go toolchain as its README says and put the binary there, or set SCYLLA_BENCH" >&2
    fi
    return $missing
}

# peer_time NAME CMD...: runs CMD under /usr/bin/time (CPU and RSS to $OUT/time-NAME), its
# output to $OUT/peer-NAME.out.
peer_time() {
    local name="$1"
    shift
    /usr/bin/time -f "%U %S %M" -o "$OUT/time-$name" "$@" > "$OUT/peer-$name.out" 2>&1 || {
        echo "bench: $name failed; see $OUT/peer-$name.out" >&2
        return 1
    }
}

# The ops each peer completed, from its own report.
ops_cql_stress() { awk -F: '/^Total operations/ { gsub(/ /, "", $2); print $2 }' "$OUT/peer-cql-stress.out"; }
ops_scylla_bench() { awk -F: '/^Total ops/ { gsub(/[ \t]/, "", $2); print $2 }' "$OUT/peer-scylla-bench.out"; }
rss_mib() { awk '{ printf "%.0f", $3 / 1024 }' "$OUT/time-$1"; }

# run_cqlpulse RATE OPS_OR_SECS; run_cql_stress ...; run_scylla_bench ...: one run each, rate 0
# meaning unthrottled (then the second argument is ops, else seconds). Each prints
# "us_per_op achieved_ops_per_s rss_mib".
run_cqlpulse() {
    local rate="$1" n="$2" json="$OUT/peer-cqlpulse.json" bound
    if [[ $rate == 0 ]]; then bound=(--ops "$n"); else bound=(--duration "${n}s"); fi
    peer_time cqlpulse "$BIN" run config/bench-fixed.toml --rate "$rate" "${bound[@]}" --threads "$THREADS" \
        --no-http --status-every 0s --summary-json "$json" --log-format json || return 1
    local ops rate_done
    ops=$(report field "$json" ok)
    rate_done=$(report field "$json" total.ops_per_second round)
    echo "$(per_op "$OUT/time-cqlpulse" "$ops") $rate_done $(rss_mib cqlpulse)"
}
run_floor() {
    local n="$1"
    peer_time floor target/release/examples/driver_loop --ops "$n" --concurrency 128 || return 1
    local rate_done
    rate_done=$(report field "$OUT/peer-floor.out" ops_per_second round)
    echo "$(per_op "$OUT/time-floor" "$n") $rate_done $(rss_mib floor)"
}
# cql_stress_args BOUND POP [THROTTLE]: cql-stress's insert, as every run here sends it, in
# CQL_STRESS_ARGS.
cql_stress_args() {
    CQL_STRESS_ARGS=(write "$1" cl=ONE -col n=1 'size=fixed(100)' -rate threads=128 "${@:3}" -pop "$2"
        -schema 'replication(factor=1)' -node 127.0.0.1)
}
run_cql_stress() {
    local rate="$1" n="$2" bound throttle=()
    if [[ $rate == 0 ]]; then bound="n=$n"; else bound="duration=${n}s"; throttle=("fixed=${rate}/s"); fi
    cql_stress_args "$bound" "seq=1..${PEER_OPS}" "${throttle[@]}"
    # One runtime thread (its #[tokio::main] runtime reads TOKIO_WORKER_THREADS).
    peer_time cql-stress env TOKIO_WORKER_THREADS="$THREADS" RUST_BACKTRACE=0 "$CQL_STRESS" \
        "${CQL_STRESS_ARGS[@]}" || return 1
    local ops rate_done
    ops=$(ops_cql_stress)
    rate_done=$(awk -F: '/^Op rate/ { gsub(/[^0-9.]/, "", $2); print $2 }' "$OUT/peer-cql-stress.out")
    echo "$(per_op "$OUT/time-cql-stress" "$ops") $rate_done $(rss_mib cql-stress)"
}
run_scylla_bench() {
    local rate="$1" n="$2" bound
    if [[ $rate == 0 ]]; then bound=(-partition-count "$n"); else bound=(-partition-count "$PEER_OPS" -duration "${n}s"); fi
    peer_time scylla-bench env GOMAXPROCS="$THREADS" "$SCYLLA_BENCH" -mode write -workload sequential "${bound[@]}" \
        -clustering-row-count 1 -clustering-row-size 100 -concurrency 128 -connection-count 1 \
        -consistency-level one -replication-factor 1 -max-rate "$rate" -keyspace sb_peers -nodes 127.0.0.1 || return 1
    local ops rate_done
    ops=$(ops_scylla_bench)
    rate_done=$(awk -F: '/^Operations\/s/ { gsub(/[ \t]/, "", $2); print $2 }' "$OUT/peer-scylla-bench.out")
    echo "$(per_op "$OUT/time-scylla-bench" "$ops") $rate_done $(rss_mib scylla-bench)"
}

peers_section() {
    cargo build --release --locked -q --example driver_loop
    local tools=(floor cqlpulse)
    peers_missing || true
    [[ -x $CQL_STRESS ]] && tools+=(cql-stress)
    [[ -x $SCYLLA_BENCH ]] && tools+=(scylla-bench)
    echo
    echo "## Against the peers (issue 24)"
    echo
    echo "Load average at the start: $(cut -d' ' -f1-3 /proc/loadavg). One client thread each (cqlpulse \`--threads $THREADS\`,"
    echo "cql-stress \`TOKIO_WORKER_THREADS=$THREADS\`, scylla-bench \`GOMAXPROCS=$THREADS\`), 128 in flight, consistency ONE, a 100-byte"
    echo "blob per insert; whole-process CPU (user + system, start-up included) per op completed; $REPEAT interleaved rounds."
    echo "Commands (RATE 0 = unthrottled with N ops, else S seconds at RATE):"
    echo
    echo "- floor: \`target/release/examples/driver_loop --ops N --concurrency 128\`"
    echo "- cqlpulse: \`$BIN run config/bench-fixed.toml --rate RATE --ops N|--duration S --threads $THREADS --no-http\`"
    [[ -x $CQL_STRESS ]] && echo "- cql-stress $("$CQL_STRESS" version 2>/dev/null | awk '/Version/ { print $3; exit }'): \`cql-stress-cassandra-stress write n=N|duration=S cl=ONE -col n=1 'size=fixed(100)' -rate threads=128 [fixed=RATE/s] -pop seq=1..$PEER_OPS -schema 'replication(factor=1)'\`"
    [[ -x $SCYLLA_BENCH ]] && echo "- scylla-bench: \`scylla-bench -mode write -workload sequential -partition-count N -clustering-row-count 1 -clustering-row-size 100 -concurrency 128 -connection-count 1 -consistency-level one -max-rate RATE [-duration S]\`"
    echo
    echo "| mode | tool | us/op per round | median us/op | vs floor | achieved ops/s (median) | peak RSS MiB |"
    echo "|---|---|---|---:|---:|---:|---:|"
    local rate tool result floor_median
    for rate in 0 ${BENCH_RATES:-2000 20000}; do
        declare -A cpu=() achieved=() rss=()
        for _ in $(seq "$REPEAT"); do
            for tool in "${tools[@]}"; do
                [[ $rate != 0 && $tool == floor ]] && continue
                local n=$PEER_OPS
                [[ $rate != 0 ]] && n=$PEER_SECS
                case $tool in
                    floor) result=$(run_floor "$n") ;;
                    cqlpulse) result=$(run_cqlpulse "$rate" "$n") ;;
                    cql-stress) result=$(run_cql_stress "$rate" "$n") ;;
                    scylla-bench) result=$(run_scylla_bench "$rate" "$n") ;;
                esac || continue
                read -r c a r <<< "$result"
                cpu[$tool]="${cpu[$tool]:-} $c"; achieved[$tool]="${achieved[$tool]:-} $a"; rss[$tool]=$r
            done
        done
        floor_median=""
        [[ -n ${cpu[floor]:-} ]] && floor_median=$(median "${cpu[floor]}")
        for tool in "${tools[@]}"; do
            [[ -n ${cpu[$tool]:-} ]] || continue
            local m vs="-" mode="unthrottled, $PEER_OPS ops"
            m=$(median "${cpu[$tool]}")
            [[ -n $floor_median ]] && vs="$(ratio "$m" "$floor_median")x"
            [[ $rate != 0 ]] && mode="$rate ops/s, $PEER_SECS s" && vs="-"
            echo "| $mode | $tool | $(xargs <<< "${cpu[$tool]}" | sed 's| | / |g') | $m | $vs | $(median "${achieved[$tool]}") | ${rss[$tool]} |"
        done
        unset cpu achieved rss
    done
    instructions_section
}

# User-space instructions per op (bench/instructions: callgrind, the difference between
# 50,000 and 150,000 unthrottled inserts) of the floor, cql-stress and every cqlpulse model at
# 128 in flight (`cqlpulse compare`, one model per process). They move 1-2% between runs where
# CPU time moves 10-20% (BENCHMARKS.md); left out, saying how to get valgrind, when it is not
# installed, or with BENCH_INSTRUCTIONS=0.
instructions_section() {
    [[ ${BENCH_INSTRUCTIONS:-1} == 0 ]] && return 0
    if ! command -v valgrind >/dev/null; then
        echo "bench: valgrind not found: \`apt-get install valgrind\` for the instruction counts" >&2
        return 0
    fi
    local small=50000 large=150000 floor count model
    echo
    echo "Instructions per op: \`bench/instructions $small $large -- COMMAND\` (user space, callgrind;"
    echo "cqlpulse's periodic work counts about 20 times more per op under valgrind than in a real run):"
    echo
    echo "| client | instructions per op | vs floor |"
    echo "|---|---:|---:|"
    floor=$(instructions_of "$small" "$large" target/release/examples/driver_loop --ops '{ops}' --concurrency 128)
    echo "| floor | $floor | 1.00x |"
    if [[ -x $CQL_STRESS ]]; then
        cql_stress_args 'n={ops}' 'seq=1..{ops}'
        # Not through `env`: valgrind counts what it starts, not what that execs.
        count=$(TOKIO_WORKER_THREADS="$THREADS" instructions_of "$small" "$large" "$CQL_STRESS" "${CQL_STRESS_ARGS[@]}")
        echo "| cql-stress | $count | $(ratio "$count" "$floor")x |"
    fi
    for model in chains unbounded pipeline batches sync; do
        count=$(instructions_of "$small" "$large" "$BIN" compare config/bench-fixed.toml --rate 0 --ops '{ops}' \
            --models "$model" --concurrency 128 --sync-workers 128 --threads "$THREADS" --format json --log-format json)
        echo "| cqlpulse $model | $count | $(ratio "$count" "$floor")x |"
    done
}

# instructions_of SMALL LARGE COMMAND...: the count bench/instructions prints.
instructions_of() { bench/instructions "$1" "$2" -- "${@:3}" | awk '{ print $1 }'; }

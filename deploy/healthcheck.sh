#!/bin/sh
# The runtime image's HEALTHCHECK (installed as /usr/local/bin/cqlpulse-healthcheck): GET
# /healthz on the address the daemon listens on, found the way the daemon finds it, each
# later source winning: its default 127.0.0.1:9464, the spec's [metrics] listen,
# CQLPULSE__METRICS__LISTEN, `--set metrics.listen=...`, `--listen`. The command line is the
# daemon's own (/proc/1/cmdline: ENTRYPOINT ["cqlpulse"] makes it the container's process 1),
# so a container started with another --listen, or with the variable, is probed where it
# listens. A wildcard address (0.0.0.0, [::]) is probed on loopback.
# Exit status 0 healthy, 1 unhealthy (what HEALTHCHECK wants; curl's own codes are not).
set -u

unquote() {
    v="$1"
    v="${v#\"}" v="${v%\"}" v="${v#\'}" v="${v%\'}"
    printf '%s' "$v"
}

# The spec's [metrics] listen (a TOML string on one line, as every example writes it).
spec_listen() {
    [ -r "$1" ] || return 0
    awk '
        /^[ \t]*\[/ { in_metrics = ($0 ~ /^[ \t]*\[metrics\][ \t]*(#.*)?$/) ; next }
        in_metrics && /^[ \t]*listen[ \t]*=/ {
            sub(/^[^=]*=[ \t]*/, ""); sub(/[ \t]*(#.*)?$/, ""); gsub(/["\047]/, ""); print; exit
        }' "$1"
}

listen="127.0.0.1:9464"
spec="" from_env="" from_set="" from_flag=""
subcommand_seen=0 want_value=""
# One argument per line (an argument holding a newline is none of the ones read here).
args="$(tr '\0' '\n' </proc/1/cmdline)"
old_ifs="$IFS"
IFS='
'
for arg in $args; do
    if [ -n "$want_value" ]; then
        case "$want_value" in
            listen) from_flag="$arg" ;;
            set) case "$arg" in metrics.listen=*) from_set="${arg#metrics.listen=}" ;; esac ;;
        esac
        want_value=""
        continue
    fi
    case "$arg" in
        run|check|compare) [ "$subcommand_seen" = 0 ] && subcommand_seen=1 ;;
        --listen) want_value=listen ;;
        --listen=*) from_flag="${arg#--listen=}" ;;
        --set) want_value="set" ;;
        --set=metrics.listen=*) from_set="${arg#--set=metrics.listen=}" ;;
        --no-http|--connect|--*=*) ;;
        --*) want_value=other ;;
        *) [ "$subcommand_seen" = 1 ] && [ -z "$spec" ] && spec="$arg" ;;
    esac
done
IFS="$old_ifs"
from_env="${CQLPULSE__METRICS__LISTEN:-}"

for candidate in "$(spec_listen "$spec")" "$from_env" "$from_set" "$from_flag"; do
    [ -n "$candidate" ] && listen="$(unquote "$candidate")"
done

host="${listen%:*}" port="${listen##*:}"
case "$host" in
    ""|0.0.0.0) host=127.0.0.1 ;;
    "[::]") host="[::1]" ;;
esac
curl -fsS --max-time 2 -o /dev/null "http://$host:$port/healthz" || exit 1

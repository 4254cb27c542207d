#!/bin/bash
# Entry point of the Cassandra stand-in image: one node on the container's address, its
# cassandra.yaml, logback.xml and JVM options written by scripts/lib/cassandra-config.sh (the
# functions scripts/cassandra uses), plus the Prometheus JMX exporter on :9180.
# Environment: CASSANDRA_DATA (state folder, default /var/lib/cassandra), CASSANDRA_HEAP
# (default 512M), CASSANDRA_FAST=1 (-Dcassandra.unsafesystem=true, tests only).
# Arguments are ignored (with a note): the compose file's are ScyllaDB's flags.
set -euo pipefail
[[ $# -gt 0 ]] && echo "cassandra stand-in: ignoring arguments meant for ScyllaDB: $*" >&2

# What cassandra-config.sh reads (see scripts/cassandra): one plain node.
# shellcheck disable=SC2034
NODES=1 TLS=0 MTLS=0 AUTH=0 PORT=9042 STORAGE_PORT=7000
HEAP="${CASSANDRA_HEAP:-512M}"
LIB_DIR=/opt/cassandra/lib
DATA="${CASSANDRA_DATA:-/var/lib/cassandra}"
ADDRESS="$(hostname -i | awk '{ print $1 }')"
node_dir() { echo "$DATA"; }
node_host() { echo "$ADDRESS"; }
jmx_port() { echo 7199; }
# shellcheck source=../cassandra-config.sh disable=SC1091 # copied beside this file in the image
source /opt/cassandra/cassandra-config.sh

java="$(readlink -f "$(command -v java)")"
write_node_config 1
jvm_options 1 "$java"
JVM+=("-javaagent:/opt/jmx-exporter/jmx_prometheus_javaagent.jar=9180:/opt/jmx-exporter/config.yml")
echo "cassandra stand-in: node on $ADDRESS:$PORT, state in $DATA, heap $HEAP"
cd "$DATA"
exec "$java" "${JVM[@]}" -cp "$LIB_DIR/*" org.apache.cassandra.service.CassandraDaemon

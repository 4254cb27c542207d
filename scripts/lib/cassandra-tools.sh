# shellcheck shell=bash
# scripts/cassandra's tools: Debian packages (JDK 17, Python and its CQL driver) and the
# Cassandra jars resolved from Maven Central. Sourced; uses the script's settings and log/die.
# ---------------------------------------------------------------- tools

apt_install() {
    # Best effort: only root can install; apt-get update first on a fresh machine.
    # Packages already installed are left alone (no upgrade as a side effect).
    local pkg
    local -a missing=()
    [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null || return 1
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -gt 0 ]] || return 1
    log "cassandra: installing ${missing[*]} with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1
}

find_java17() {
    local candidate
    for candidate in /usr/lib/jvm/*17*; do
        if [[ -x "$candidate/bin/java" ]] && "$candidate/bin/java" -version 2>&1 | grep -q 'version "17'; then
            echo "$candidate/bin/java"
            return 0
        fi
    done
    return 1
}

java17() {
    local java
    if [[ -n "${JAVA17_HOME:-}" ]]; then
        [[ -x "$JAVA17_HOME/bin/java" ]] || die "JAVA17_HOME=$JAVA17_HOME has no bin/java"
        echo "$JAVA17_HOME/bin/java"
        return 0
    fi
    if ! java="$(find_java17)"; then
        apt_install openjdk-17-jdk-headless || true
        java="$(find_java17)" || die "no Java 17 found; apt-get install openjdk-17-jre-headless (or set JAVA17_HOME)"
    fi
    echo "$java"
}

# The Python of scripts/lib/cql.py: Debian's, with Debian's CQL driver (python3-cassandra, the
# DataStax driver), whatever python3 comes first on PATH.
python() {
    local driver=/usr/lib/python3/dist-packages/cassandra/__init__.py
    if [[ ! -x /usr/bin/python3 || ! -r $driver ]]; then
        apt_install python3 python3-cassandra || true
        [[ -r $driver ]] || die "no CQL driver for /usr/bin/python3; apt-get install python3-cassandra"
    fi
    echo /usr/bin/python3
}

# ---------------------------------------------------------------- resolve

resolve() {
    if [[ -f "$LIB_MARKER" ]]; then
        return 0
    fi
    if ! command -v mvn >/dev/null; then
        apt_install maven || true
        command -v mvn >/dev/null || die "mvn not found; apt-get install maven"
    fi
    local java t0 work
    java="$(java17)"
    t0="$(now)"
    work="$CASSANDRA_HOME/resolve-$CASSANDRA_VERSION"
    mkdir -p "$work"
    rm -rf "$LIB_DIR.partial"
    cat >"$work/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cqlpulse</groupId>
  <artifactId>cassandra-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$CASSANDRA_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
    log "cassandra: resolving org.apache.cassandra:cassandra-all:$CASSANDRA_VERSION and its runtime dependencies"
    if ! JAVA_HOME="$(dirname "$(dirname "$java")")" mvn -B -q -f "$work/pom.xml" \
        "$DEPENDENCY_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$LIB_DIR.partial" >"$work/mvn.log" 2>&1; then
        tail -n 40 "$work/mvn.log" >&2
        die "resolving the jars failed (full log: $work/mvn.log)"
    fi
    rm -rf "$LIB_DIR"
    mv "$LIB_DIR.partial" "$LIB_DIR"
    date -u +%FT%TZ >"$LIB_MARKER"
    log "cassandra: resolved $(find "$LIB_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIB_DIR" | cut -f1)) in $(elapsed "$t0") s"
}

#!/bin/sh
# Creates an empty stand-in source file for every target a Cargo manifest declares, so cargo
# can parse the manifest (and build every dependency) before the real sources are copied in.
#
#     deploy/cargo-target-stubs.sh [Cargo.toml]     prints each path it created
#
# Why: cargo refuses a manifest whose explicit [[test]], [[example]], [[bench]] or [[bin]]
# target has no source file ("can't find `cluster` test at `tests/cluster.rs`"), even for a
# build that never compiles that target. The Dockerfile's dependency-cache layer copies only
# Cargo.toml and Cargo.lock, so it stubs what the manifest names, whatever it names: a target
# added to Cargo.toml later cannot break the image build again. Files that exist are left alone.
#
# Paths: a target's `path`, or cargo's default for its kind and name (src/lib.rs,
# src/main.rs, src/bin/NAME.rs, tests/NAME.rs, examples/NAME.rs, benches/NAME.rs).
# POSIX sh and awk only: it runs in the builder image before anything else is there.
set -eu

manifest="${1:-Cargo.toml}"
[ -f "$manifest" ] || { echo "cargo-target-stubs: no manifest $manifest" >&2; exit 1; }

awk '
    function unquote(s) {
        sub(/^[^=]*=[ \t]*/, "", s); sub(/[ \t]*(#.*)?$/, "", s)
        if (substr(s, 1, 1) == "\"" || substr(s, 1, 1) == q) s = substr(s, 2, length(s) - 2)
        return s
    }
    function flush() {
        if (kind == "") return
        if (path == "") {
            if (kind == "lib") path = "src/lib.rs"
            else if (kind == "bin") path = (name == "" ? "src/main.rs" : "src/bin/" name ".rs")
            else if (kind == "test") path = "tests/" name ".rs"
            else if (kind == "example") path = "examples/" name ".rs"
            else if (kind == "bench") path = "benches/" name ".rs"
        }
        print kind "\t" path
        kind = ""
    }
    # Every package has a library or a binary: stub both defaults (a stub nobody uses is harmless).
    BEGIN { q = sprintf("%c", 39); print "bin\tsrc/main.rs"; print "lib\tsrc/lib.rs" }
    /^[ \t]*\[\[(bin|test|example|bench)\]\][ \t]*(#.*)?$/ {
        flush(); kind = $0; gsub(/[^a-z]/, "", kind); name = ""; path = ""; next
    }
    /^[ \t]*\[lib\][ \t]*(#.*)?$/ { flush(); kind = "lib"; name = ""; path = ""; next }
    /^[ \t]*\[/ { flush(); next }
    kind != "" && /^[ \t]*name[ \t]*=/ { name = unquote($0) }
    kind != "" && /^[ \t]*path[ \t]*=/ { path = unquote($0) }
    END { flush() }
' "$manifest" | sort -u | while IFS="$(printf '\t')" read -r kind target; do
    [ -e "$target" ] && continue
    mkdir -p "$(dirname "$target")"
    # A library stub is empty; every other kind compiles as a program, so it gets a main.
    if [ "$kind" = lib ]; then : >"$target"; else echo 'fn main() {}' >"$target"; fi
    echo "$target"
done

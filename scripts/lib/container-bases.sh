# shellcheck shell=bash
# Sourced by scripts/container: the base images, made locally with mmdebstrap from the Debian
# apt mirror (no image registry is reachable), each imported under the exact name a
# Dockerfile or the compose file asks for. A base is rebuilt only when its recipe changes:
# every image carries the hash of its recipe in the label cqlpulse.recipe.
#
# Needs: podman (configured by podman-env.sh), mmdebstrap, root. Reads REPO_DIR, PODMAN_STATE.
# The hooks are shell run by mmdebstrap, "$1" the root tree: single quotes on purpose.
# shellcheck disable=SC2016

DEBIAN_SOURCES="deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main"
# Slim like the official images: no documentation, manuals or translations, no Recommends.
MMDEBSTRAP_SLIM=(
    --aptopt='APT::Install-Recommends "false"'
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
)
# The CA certificates this machine trusts beyond Debian's (an egress proxy's, a company's):
# a builder without them cannot verify crates.io.
LOCAL_CAS=(/usr/local/share/ca-certificates/*.crt)
[[ -e "${LOCAL_CAS[0]}" ]] || LOCAL_CAS=()

# The PATH the official images set in their configuration (`podman kube play` needs it there).
STANDARD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

recipe_hash() { { printf '%s\n' "$@"; cat "${LOCAL_CAS[@]}" /dev/null; } | sha256sum | cut -c1-16; }

# has_base NAME HASH: the image exists and was made from this recipe.
has_base() {
    [[ "$(podman image inspect --format '{{index .Labels "cqlpulse.recipe"}}' "$1" 2>/dev/null)" == "$2" ]]
}

# make_base NAME HASH VARIANT PACKAGES HOOKS_ARRAY CHANGES_ARRAY: mmdebstrap to a tarball,
# `podman import` it with the recipe label and the Dockerfile instructions in CHANGES.
make_base() {
    local name="$1" hash="$2" variant="$3" packages="$4" t0=$SECONDS tar
    local -n hook_list="$5" change_list="$6"
    if has_base "$name" "$hash"; then
        echo "container: base $name cached (recipe $hash)"
        return 0
    fi
    tar="$PODMAN_STATE/tmp/base-$hash.tar"
    local include=()
    [[ -n "$packages" ]] && include=(--include="$packages")
    echo "container: making base $name with mmdebstrap --variant=$variant ${packages:+(+ $packages)}"
    if ! mmdebstrap --quiet --variant="$variant" "${include[@]}" "${MMDEBSTRAP_SLIM[@]}" \
        "${hook_list[@]}" bookworm "$tar" - <<<"$DEBIAN_SOURCES" >"$PODMAN_STATE/tmp/mmdebstrap.log" 2>&1; then
        tail -n 30 "$PODMAN_STATE/tmp/mmdebstrap.log" >&2
        rm -f "$tar"
        die "mmdebstrap for $name failed (log: $PODMAN_STATE/tmp/mmdebstrap.log)"
    fi
    local args=(--change "LABEL cqlpulse.recipe=$hash") change
    for change in "${change_list[@]}"; do args+=(--change "$change"); done
    podman import --quiet "${args[@]}" "$tar" "$name" >/dev/null
    rm -f "$tar"
    echo "container: base $name made in $((SECONDS - t0)) s ($(image_size "$name"))"
}

image_size() { podman image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }

# Copies the machine's extra CA certificates into a root tree and refreshes its bundle.
ca_hooks() {
    local ca hooks=()
    for ca in "${LOCAL_CAS[@]}"; do
        hooks+=(--customize-hook="copy-in $ca /usr/local/share/ca-certificates/")
    done
    hooks+=(--customize-hook='chroot "$1" update-ca-certificates >/dev/null')
    printf '%s\n' "${hooks[@]}"
}

# The Dockerfile's builder, rust:VERSION-bookworm: Debian with what the official image's
# buildpack-deps base gives a Rust build (a C toolchain for aws-lc-sys, ring and mimalloc,
# pkg-config, OpenSSL headers) and the machine's CAs. The Rust toolchain is not in it:
# `podman build` mounts the host's (rustc --print sysroot) read-only at /usr/local/rust.
base_builder() {
    local name="$1" hooks changes
    mapfile -t hooks < <(ca_hooks)
    changes=(
        "ENV CARGO_HOME=/usr/local/cargo"
        "ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:$STANDARD_PATH"
    )
    make_base "$name" "$(recipe_hash builder 1 "${hooks[@]}" "${changes[@]}")" minbase \
        ca-certificates,curl,gcc,g++,libc6-dev,make,pkg-config,libssl-dev hooks changes
}

# debian:12.x-slim: minbase is what the official slim image is (apt, no docs).
base_slim() {
    local name="$1" hooks=() changes=("ENV PATH=$STANDARD_PATH" "CMD [\"bash\"]")
    make_base "$name" "$(recipe_hash slim 1 "${changes[@]}")" minbase "" hooks changes
}

# gcr.io/distroless/cc-debian12:nonroot: glibc, libgcc, libssl and CA certificates, the
# users root, nobody and nonroot (65532), no shell and no package manager. Packages are only
# extracted (their scripts would need a shell), so the CA bundle is the host's.
base_distroless() {
    local name="$1" hooks changes
    hooks=(
        --customize-hook='printf "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" >"$1/etc/passwd"'
        --customize-hook='printf "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n" >"$1/etc/group"'
        --customize-hook='mkdir -p "$1/etc/ssl/certs" "$1/home/nonroot" "$1/tmp" && chmod 1777 "$1/tmp" && chown 65532:65532 "$1/home/nonroot"'
        --customize-hook='copy-in /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/'
        # What extract leaves behind of apt and dpkg is not part of a distroless image.
        --customize-hook='rm -rf "$1/var/lib/apt" "$1/var/cache/apt" "$1/var/lib/dpkg" "$1/var/log"/*'
    )
    changes=("ENV PATH=$STANDARD_PATH" "USER 65532:65532" "WORKDIR /home/nonroot")
    make_base "$name" "$(recipe_hash distroless 1 "${hooks[@]}" "${changes[@]}")" extract \
        libc6,libgcc-s1,libssl3,netbase,tzdata hooks changes
}

# The Cassandra stand-in's base: Debian's JDK 17 runtime (the one scripts/cassandra uses), and
# python3 with Debian's CQL driver for scripts/lib/cql.py, the readiness probe. The jars come
# in a layer on top.
base_cassandra() {
    local name="$1" hooks changes=() packages=openjdk-17-jre-headless,python3,python3-cassandra,hostname
    # The JDK's maintainer script links its manual pages, in a folder the slim options skip.
    hooks=(--essential-hook='mkdir -p "$1/usr/share/man/man1"')
    make_base "$name" "$(recipe_hash cassandra "$packages" "${hooks[@]}")" minbase \
        "$packages" hooks changes
}

# The Prometheus stand-in: Debian's package (prom/prometheus cannot be pulled), laid out like
# the official image: entrypoint the binary, user nobody, data in /prometheus.
base_prometheus() {
    local name="$1" hooks changes
    hooks=(--customize-hook='mkdir -p "$1/prometheus" && chown 65534:65534 "$1/prometheus"')
    changes=(
        'ENTRYPOINT ["/usr/bin/prometheus"]'
        'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
        "USER 65534:65534" "WORKDIR /prometheus" "EXPOSE 9090"
    )
    make_base "$name" "$(recipe_hash prometheus 1 "${hooks[@]}" "${changes[@]}")" minbase \
        prometheus hooks changes
}

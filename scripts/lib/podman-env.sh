# shellcheck shell=bash
# Sourced by scripts/container: a private podman for the project. Everything podman stores
# (images, build cache, containers, volumes, network definitions) lives under $PODMAN_STATE
# (default ~/.cache/cqlpulse-podman, outside the clone so that every clone on one machine, CI's
# fresh one included, reuses the base images and the dependency layer), selected with
# CONTAINERS_CONF and CONTAINERS_STORAGE_CONF: nothing in /etc changes, and removing that
# folder (after `scripts/container clean`)
# forgets it all (podman's blob-info cache, a small file in /var/lib/containers/cache, and
# netavark's empty base firewall chains are the only traces outside; no setting moves them).
# Reads REPO_DIR; sets PODMAN_STATE, PODMAN_RUNROOT and exports the two.
#
# Facts of the CI machines this encodes: crun cannot start containers (cgroups in hybrid
# mode), so runc; the open-files and process limits cannot be raised, so containers get
# the hard limits the caller already has (podman's defaults are above them); there is no systemd to run journald or health-check timers.

PODMAN_STATE="${PODMAN_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/cqlpulse-podman}"
# Run-time state (sockets, locks) stays short-pathed and off the disk: socket paths under a
# deep work tree would pass the 108-byte limit of a Unix socket address.
PODMAN_RUNROOT="/run/cqlpulse-podman-$(printf '%s' "$PODMAN_STATE" | cksum | cut -d' ' -f1)"

write_podman_config() {
    local nofile nproc
    nofile="$(ulimit -Hn)"
    nproc="$(ulimit -Hu)"
    # runc refuses an RLIMIT_NPROC near the caller's hard limit on these machines (96369 hard:
    # 65535 refused, 32768 accepted); 32768 is far more threads than a container here needs.
    [[ "$nproc" == unlimited || "$nproc" -gt 32768 ]] && nproc=32768
    [[ "$nofile" == unlimited ]] && nofile=1048576
    mkdir -p "$PODMAN_STATE/storage" "$PODMAN_STATE/networks" "$PODMAN_STATE/tmp" "$PODMAN_RUNROOT"
    # Keep the store out of git without touching the repository's .gitignore (as check-deploy).
    [[ -f "$REPO_DIR/.cache/.gitignore" ]] || { mkdir -p "$REPO_DIR/.cache" && printf '*\n' >"$REPO_DIR/.cache/.gitignore"; }
    cat >"$PODMAN_STATE/storage.conf" <<EOF
# Written by scripts/container: the project's private podman storage.
[storage]
driver = "overlay"
graphroot = "$PODMAN_STATE/storage"
runroot = "$PODMAN_RUNROOT/storage"
EOF
    cat >"$PODMAN_STATE/containers.conf" <<EOF
# Written by scripts/container: the project's private podman settings.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$PODMAN_RUNROOT/libpod"
volume_path = "$PODMAN_STATE/storage/volumes"
image_copy_tmp_dir = "$PODMAN_STATE/tmp"

[network]
network_config_dir = "$PODMAN_STATE/networks"
EOF
    export CONTAINERS_CONF="$PODMAN_STATE/containers.conf"
    export CONTAINERS_STORAGE_CONF="$PODMAN_STATE/storage.conf"
    # buildah's scratch files (layer diffs of a big builder) on the project's disk, not /var/tmp.
    export TMPDIR="$PODMAN_STATE/tmp"
    # shellcheck disable=SC2034 # used by scripts/container
    NOFILE="$nofile"
}

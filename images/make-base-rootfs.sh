#!/usr/bin/env bash
# make-base-rootfs.sh TAG
#
# Build a minimal Debian bookworm root filesystem with debootstrap and import
# it into the local Docker engine as TAG (e.g. debian:bookworm-slim).  Used
# when no registry answers, so that a Dockerfile's FROM still finds its base.
#
# Needs root, debootstrap, a running Docker engine, and plain-http access to
# the Debian mirror (override with DEBIAN_MIRROR).
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 TAG   (e.g. $0 debian:bookworm-slim)" >&2
    exit 2
fi
TAG=$1
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

say() { echo "==> $*"; }

if [[ $(id -u) -ne 0 ]]; then
    echo "error: $0 must run as root (debootstrap needs it)" >&2
    exit 1
fi
for tool in debootstrap docker tar; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: $tool not found (apt-get install debootstrap docker.io)" >&2
        exit 1
    fi
done

ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/slicerhub-rootfs.XXXXXX")
cleanup() { rm -rf --one-file-system "$ROOTFS"; }
trap cleanup EXIT

say "debootstrap --variant=minbase $SUITE into $ROOTFS (mirror $MIRROR)"
start=$SECONDS
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR"
say "debootstrap done in $((SECONDS - start)) s"

say "cleaning apt lists, caches and logs"
cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
# Like the official images: do not keep downloaded .debs or docs.
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
rm -rf "$ROOTFS"/var/lib/apt/lists/* \
       "$ROOTFS"/var/cache/apt/*.bin \
       "$ROOTFS"/var/cache/apt/archives/*.deb \
       "$ROOTFS"/var/cache/apt/archives/partial/* \
       "$ROOTFS"/var/cache/debconf/*-old \
       "$ROOTFS"/var/log/apt/* \
       "$ROOTFS"/var/log/dpkg.log \
       "$ROOTFS"/var/log/bootstrap.log \
       "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/*
# Docker provides these at run time; do not bake in the host's.
: >"$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/hostname"

say "importing rootfs as $TAG ($(du -sh "$ROOTFS" | cut -f1))"
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$TAG"
say "done: $TAG ($(docker image inspect --format '{{.Id}}' "$TAG"))"

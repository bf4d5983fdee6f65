#!/usr/bin/env bash
# Install the Debian packages SlicerHub's demo and tests run for real:
# OpenLDAP (slapd), the Docker engine, debootstrap (to make a base image
# where no registry answers), Node.js (configurable-http-proxy) and the
# headless browser of the end-to-end tests (chromium + chromium-driver),
# systemd-analyze for checking the generated units, and PostgreSQL (the hub's
# database tests).
# Only what is missing is installed; needs root for that.
set -euo pipefail

need=()
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || need+=(ldap-utils)
[ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
[ -x /usr/sbin/dockerd ] || command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# systemd-analyze checks the units `slicerhub systemd` writes (no running systemd needed).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# PostgreSQL for the hub database tests (slicerhub.devenv.postgres runs its own server).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)

if [ ${#need[@]} -eq 0 ]; then
    echo "==> System packages present"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "Missing system packages: ${need[*]}" >&2
    echo "Install them as root: apt-get install -y ${need[*]}" >&2
    exit 1
fi
echo "==> Installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# The slapd package must not start the system directory: we run our own.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.slicerhub
chmod +x /usr/sbin/policy-rc.d.slicerhub
if [ ! -e /usr/sbin/policy-rc.d ]; then
    cp /usr/sbin/policy-rc.d.slicerhub /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d /usr/sbin/policy-rc.d.slicerhub' EXIT
else
    trap 'rm -f /usr/sbin/policy-rc.d.slicerhub' EXIT
fi
# Nor may postgresql create or start the system cluster: the tests run their own.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/slicerhub.conf
apt-get install -y -q --no-install-recommends "${need[@]}"

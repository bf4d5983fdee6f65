#!/usr/bin/env bash
# Install the Debian packages SlicerHub's demo and tests run for real:
# OpenLDAP (slapd), the Docker engine, debootstrap (to make a base image
# where no registry answers), Node.js (configurable-http-proxy) and the
# headless browser of the end-to-end tests (chromium + chromium-driver),
# systemd-analyze for checking the generated units, PostgreSQL (the hub's
# database tests) and Orthanc with its DICOMweb plugin (the hospital PACS of
# the imaging tests).
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
# Orthanc + DICOMweb for the imaging tests (slicerhub.devenv.orthanc runs its own server).
[ -x /usr/sbin/Orthanc ] || need+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)

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
# The slapd and orthanc packages must not start their system services (the
# directory, the PACS): we run our own. invoke-rc.d and deb-systemd-invoke,
# which the packages' scripts start services through, obey policy-rc.d.
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
# The orthanc package enables its service for the next boot (a PACS on
# 8042/4242 for every user); the tests run their own, so keep it off.
if [[ " ${need[*]} " == *" orthanc "* ]]; then
    systemctl disable --quiet orthanc.service 2>/dev/null || true
    update-rc.d orthanc disable >/dev/null 2>&1 || true
fi

#!/bin/sh
# pip in the builder stage: the host's CA bundle when given (build-ca.crt), the
# wheelhouse alone when it is filled (an offline build, docs/offline-build.md).
set -eu
if [ -s /tmp/build/build-ca.crt ]; then export PIP_CERT=/tmp/build/build-ca.crt; fi
if [ -n "$(ls -A /tmp/build/wheelhouse)" ]; then
    export PIP_NO_INDEX=1 PIP_FIND_LINKS=/tmp/build/wheelhouse
fi
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
exec /opt/venv/bin/pip "$@"

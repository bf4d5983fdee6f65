#!/bin/sh
# Start MONAI Label's radiology app for SlicerHub (images/monailabel/Dockerfile).
#
# * 127.0.0.1 only, port $SLICERHUB_COMPANION_PORT: the container shares the
#   network namespace of the user's Jupyter server, and only that server's
#   processes (3D Slicer among them) are to reach it.
# * The datastore (studies folder) is $SLICERHUB_COMPANION_DATA/datastore, on
#   the user's home volume; MONAI Label's own cache and sessions go beside it.
# * models segmentation_spleen with use_pretrained_model false: the radiology
#   app wants one model config (its labels name the scribbles' label values:
#   spleen 1, so background scribbles are 2 and foreground scribbles 3), and
#   that one downloads nothing. Its own infer task has no weights (it fails
#   until a model is trained); the scribbles task Histogram+GraphCut works
#   on CPU with none (GMM+GraphCut is listed too, but monai's GMM is
#   CUDA-only). sam2 false: no SAM 2 (not installed; weights needed).
#
# Extra arguments are passed on to `monailabel start_server`.
set -eu
port="${SLICERHUB_COMPANION_PORT:-8000}"
data="${SLICERHUB_COMPANION_DATA:-/home/slicer/.local/share/slicerhub/monailabel}"
mkdir -p "$data/datastore" "$data/cache" "$data/sessions"
export MONAI_LABEL_DATASTORE_CACHE_PATH="${MONAI_LABEL_DATASTORE_CACHE_PATH:-$data/cache}"
export MONAI_LABEL_SESSION_PATH="${MONAI_LABEL_SESSION_PATH:-$data/sessions}"
exec python -m monailabel.main start_server \
    --app /opt/monailabel/radiology \
    --studies "$data/datastore" \
    --host 127.0.0.1 \
    --port "$port" \
    --conf models segmentation_spleen \
    --conf use_pretrained_model false \
    --conf sam2 false \
    "$@"

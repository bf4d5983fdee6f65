"""What the container renders with, as decided by ``slicerhub-gl-env``."""

from __future__ import annotations

import os
from pathlib import Path


def has_gpu() -> bool:
    """True when this process renders on an NVIDIA GPU.

    The desktop session gets SLICERHUB_HAS_GPU from slicerhub-gl-env; a kernel
    (offscreen EGL, no VirtualGL needed) looks for the device itself.
    """
    decided = os.environ.get("SLICERHUB_HAS_GPU")
    if decided is not None:
        return decided == "1"
    return any(Path(os.environ.get("SLICERHUB_DEV_DIR", "/dev")).glob("nvidia[0-9]*"))


def multisamples() -> int:
    """MSAA samples: off on llvmpipe, where it costs a lot and buys little."""
    from . import settings

    default = "8" if has_gpu() else "0"
    try:
        return max(0, int(settings.get("Rendering/MultiSamples", default)))
    except ValueError:
        return int(default)

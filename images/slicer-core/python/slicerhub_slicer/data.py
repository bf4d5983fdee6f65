"""Sample data shipped in the image (nothing is downloaded at run time).

MNI152-T1: the ICBM 2009a nonlinear symmetric T1 template (1 mm, 197x233x189),
taken at build time from the nilearn wheel on PyPI, which ships it. Copyright
(C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal
Neurological Institute, McGill University; redistributable with this notice.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR = Path(os.environ.get("SLICERHUB_DATA_DIR", "/opt/slicerhub/data"))

SAMPLES = {
    "MNI152-T1": "MNI152-T1.nii.gz",
}


def sample_path(name: str = "MNI152-T1") -> Path:
    try:
        path = DATA_DIR / SAMPLES[name]
    except KeyError:
        raise ValueError(f"no sample called {name!r}; there are: {', '.join(sorted(SAMPLES))}") from None
    if not path.is_file():
        raise FileNotFoundError(f"sample {name!r} is missing from {DATA_DIR} (image built without data?)")
    return path

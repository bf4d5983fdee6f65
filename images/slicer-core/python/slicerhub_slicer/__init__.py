"""SlicerHub on slicer-core: the Slicer kernel, notebook helpers, the desktop
application shown in the browser desktop and the Slicer Web launcher."""

__version__ = "0.1.0"

from .studies import load_study  # noqa: E402  (the notebook call: load_study(uid))

__all__ = ["load_study"]

"""SlicerHub on slicer-core: the Slicer kernel, notebook helpers, the desktop
application shown in the browser desktop and the Slicer Web launcher."""

__version__ = "0.1.0"

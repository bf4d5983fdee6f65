"""SlicerHub: multi-user 3D Slicer in the browser, on JupyterHub."""

__version__ = "0.1.0"

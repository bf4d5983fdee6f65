"""SlicerHub spawners: one set of Slicer options, a Docker and a Kubernetes backend.

Installed as ``slicerhub.spawners``; the backends are imported lazily so that a
Docker deployment never needs the Kubernetes client and vice versa.
"""

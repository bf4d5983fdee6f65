"""Kubernetes client models as the JSON the API server gets.

Plain module (no package imports): tests/support/z2jh_hub_driver.py runs as a
script and imports it from its own directory.
"""

from __future__ import annotations


def plain(obj):
    """A kubernetes model as the JSON the API server gets (camelCase, no Nones)."""
    if isinstance(obj, list):
        return [plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if hasattr(obj, "openapi_types"):
        return {obj.attribute_map[a]: plain(getattr(obj, a)) for a in obj.openapi_types
                if getattr(obj, a) is not None}
    return obj

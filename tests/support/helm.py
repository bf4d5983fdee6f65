"""The SlicerHub chart with the real Helm library (helm-python-sdk, Helm v4 SDK)
and the real Kubernetes schemas (kubernetes-validate), no cluster.

z2jh is unpacked from shared/helm-charts/ into helm/slicerhub/charts/ (git
ignores it), the way `helm dependency build` would lay it out.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "slicerhub"
Z2JH_VERSION = "4.4.0"
Z2JH_TGZ = REPO.parent / "shared" / "helm-charts" / f"jupyterhub-{Z2JH_VERSION}.tgz"
# Two Kubernetes versions z2jh 4.4 supports (kubeVersion >=1.28): its oldest and a current one.
KUBE_VERSIONS = ("1.28.0", "1.33.0")
RELEASE = "slicerhub"
NAMESPACE = "slicerhub"


def unpack_z2jh() -> Path:
    import helm_python

    target = CHART / "charts" / "jupyterhub"
    chart_yaml = target / "Chart.yaml"
    if chart_yaml.exists() and yaml.safe_load(chart_yaml.read_text())["version"] == Z2JH_VERSION:
        return target
    if not Z2JH_TGZ.exists():
        raise FileNotFoundError(f"{Z2JH_TGZ} is missing (the z2jh chart as released, see its README)")
    (CHART / "charts").mkdir(exist_ok=True)
    # Unpack beside, then rename: another test run may be reading charts/ now.
    tmp = Path(tempfile.mkdtemp(dir=CHART / "charts", prefix=".unpack-"))
    helm_python.expand(tmp, Z2JH_TGZ)
    try:
        os.rename(tmp / "jupyterhub", target)
    except OSError:
        if not chart_yaml.exists():
            raise
    return target


def render(values: dict[str, Any]) -> dict[str, str]:
    import helm_python

    with helm_python.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def objects(manifests: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for path, text in manifests.items():
        if path.endswith((".yaml", ".yml")):
            out += [d for d in yaml.safe_load_all(text) if d]
    return out


def find(objs: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def validate_all(objs: list[dict]) -> int:
    """Every object against the strict OpenAPI schemas of each KUBE_VERSIONS; the count."""
    import kubernetes_validate

    for version in KUBE_VERSIONS:
        for obj in objs:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                raise AssertionError(f"{obj['kind']}/{obj['metadata'].get('name')} is not valid "
                                     f"Kubernetes {version}: {e}") from None
    return len(objs)


def demo_kube_data() -> dict[str, Any]:
    """hub_config/demo.yaml moved to a cluster: what changes is only the backend and paths."""
    data = yaml.safe_load((REPO / "hub_config" / "demo.yaml").read_text())
    data["hub"]["data_dir"] = "/srv/jupyterhub"
    data["backend"] = {"type": "kubernetes", "kubernetes": {"namespace": NAMESPACE}}
    data["courses"].update(root="/srv/courses", claim="slicerhub-courses")
    return data


def full_data() -> dict[str, Any]:
    """hub_config/kubernetes.yaml: GPU profile, course share, PostgreSQL, LDAP lookup with a bind secret."""
    return yaml.safe_load((REPO / "hub_config" / "kubernetes.yaml").read_text())

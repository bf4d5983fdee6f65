"""The chart, rendered, linted and validated with the real Helm v4 SDK and the
real Kubernetes schemas (no cluster here: nothing is applied)."""

from __future__ import annotations

import ipaddress
import shutil

import helm_python
import pytest

from slicerhub.helm_values import helm_values
from tests.support.helm import (
    CHART,
    KUBE_VERSIONS,
    RELEASE,
    demo_kube_data,
    find,
    full_data,
    objects,
    render,
    unpack_z2jh,
    validate_all,
)

METADATA_IP = ipaddress.ip_address("169.254.169.254")


@pytest.fixture(scope="module", autouse=True)
def z2jh():
    return unpack_z2jh()


@pytest.fixture(scope="module", params=["demo", "full"])
def deployment(request):
    data = demo_kube_data() if request.param == "demo" else full_data()
    values = helm_values(data)
    return request.param, values, objects(render(values))


def test_lint_strict_for_both_kubernetes_versions(deployment):
    _, values, _ = deployment
    for version in KUBE_VERSIONS:
        report = helm_python.lint(CHART, values, strict=True, kube_version=f"v{version}")
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert not report["errors"] and not problems, (report["errors"], problems)


def test_every_object_is_valid_kubernetes(deployment):
    _, _, objs = deployment
    # z2jh's own objects and ours (hub, proxy, pullers, scheduler, services...).
    assert validate_all(objs) > 40


def test_slicerhub_objects(deployment):
    name, values, objs = deployment
    config = find(objs, "ConfigMap", "slicerhub-config")
    import yaml

    assert yaml.safe_load(config["data"]["slicerhub.yaml"]) == values["slicerhub"]["config"]
    tokens = find(objs, "Secret", "slicerhub-service-tokens")
    assert set(tokens["data"]) == {"service-idle-culler-token", "service-courses-token",
                                   "service-sharing-token"}
    # Kept by helm uninstall, so a reinstall finds and reuses the tokens.
    assert tokens["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    share = find(objs, "PersistentVolumeClaim", "slicerhub-courses")
    assert share["spec"]["accessModes"] == ["ReadWriteMany"]
    for svc in ("courses", "sharing", "idle-culler"):
        dep = find(objs, "Deployment", f"slicerhub-{svc}")
        pod = dep["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"][:3] == ["slicerhub", "cluster-service", svc]
        assert pod["automountServiceAccountToken"] is False
        token = next(v for v in pod["volumes"] if v["name"] == "token")
        # Each service pod gets its own token, not the others'.
        assert token["secret"]["items"] == [{"key": f"service-{svc}-token", "path": f"service-{svc}-token"}]
    courses_pod = find(objs, "Deployment", "slicerhub-courses")["spec"]["template"]["spec"]
    claim = next(v for v in courses_pod["volumes"] if v["name"] == "courses")
    assert claim["persistentVolumeClaim"]["claimName"] == "slicerhub-courses"
    assert find(objs, "Service", "slicerhub-courses")["spec"]["ports"][0]["port"] == 8002
    hub = find(objs, "Deployment", "hub")["spec"]["template"]["spec"]
    assert hub["containers"][0]["image"] == "slicerhub/hub:0.1.0"
    if name == "full":
        # PostgreSQL: z2jh makes no SQLite volume for the hub.
        assert not [o for o in objs if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["name"] == "hub-db-dir"]
        puller = find(objs, "DaemonSet", "continuous-image-puller")["spec"]["template"]["spec"]
        images = {c["image"] for c in puller["initContainers"]}
        assert {"registry.example.org/slicerhub/slicer-core:0.1.0",
                "registry.example.org/slicerhub/slicer:0.1.0"} <= images
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in puller["tolerations"]
    else:
        find(objs, "PersistentVolumeClaim", "hub-db-dir")


def test_existing_course_claim_is_not_created():
    values = helm_values(demo_kube_data())
    values["slicerhub"]["courseShare"] = {"create": False}
    objs = objects(render(values))
    assert not [o for o in objs if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["name"] == "slicerhub-courses"]


# ------------------------------------------------------------- bad values


@pytest.mark.parametrize("change, where", [
    (lambda c: c["culler"].update(timeout=5), "/slicerhub/config/culler/timeout"),
    (lambda c: c["backend"].update(type="docker"), "/slicerhub/config/backend/type"),
    (lambda c: c["profiles"][0].update(imag="x"), "/slicerhub/config/profiles/0"),
    (lambda c: c["profiles"][0].update(mem_limit="lots"), "/slicerhub/config/profiles/0/mem_limit"),
    (lambda c: c.pop("ldap"), "missing property 'ldap'"),
])
def test_a_bad_value_fails_naming_the_field(change, where):
    values = helm_values(demo_kube_data())
    change(values["slicerhub"]["config"])
    with pytest.raises(helm_python.HelmValuesError) as e:
        render(values)
    assert where in str(e.value)
    report = helm_python.lint(CHART, values, strict=True)
    assert any(where in err for err in report["errors"])


def test_without_generated_values_it_says_what_to_run():
    values = helm_values(demo_kube_data())
    values["slicerhub"]["generated"] = {"services": {}, "dataDir": "", "configFile": "x"}
    with pytest.raises(helm_python.HelmRenderError, match="slicerhub config helm-values"):
        render(values)


# -------------------------------------------------------- network policies


def _allows_ip(rule_to: list[dict], ip) -> bool:
    for peer in rule_to:
        block = peer.get("ipBlock")
        if block and ip in ipaddress.ip_network(block["cidr"]) and not any(
                ip in ipaddress.ip_network(x) for x in block.get("except", [])):
            return True
    return False


def test_user_pods_reach_hub_and_proxy_only_not_users_api_or_metadata(deployment):
    _, _, objs = deployment
    policy = find(objs, "NetworkPolicy", "singleuser")
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"]["component"] == "singleuser-server"
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    egress = spec["egress"]
    pod_targets = [p["podSelector"]["matchLabels"].get("component")
                   for r in egress for p in r.get("to", []) if "podSelector" in p and "namespaceSelector" not in p]
    assert "hub" in pod_targets and "proxy" in pod_targets
    # Not another user's pod: no rule selects user pods or all pods.
    assert "singleuser-server" not in pod_targets
    assert all(p["podSelector"].get("matchLabels") for r in egress for p in r.get("to", []) if "podSelector" in p)
    for rule in egress:
        to = rule.get("to")
        assert to, f"a rule open to every destination: {rule}"
        # Not the metadata server, not the cluster's private ranges (pods, the API's cluster IP).
        for ip in map(ipaddress.ip_address, (
                "169.254.169.254", "169.254.170.2",  # AWS/GCP/Azure metadata, ECS task metadata
                "168.63.129.16", "100.100.100.200",  # Azure wire server, Alibaba metadata
                "fd00:ec2::254", "fe80::1",  # AWS IMDS on IPv6, link-local
                "10.96.0.1", "10.0.0.7", "172.16.0.1", "192.168.1.10", "100.64.0.10", "127.0.0.1",
                "fd12:3456::1")):
            if _allows_ip(to, ip):
                ports = {p.get("port") for p in rule.get("ports", [])}
                # No ports listed means every port.
                assert ports and ports <= {53}, f"user pods may reach {ip}: {rule}"
                assert ip != METADATA_IP, f"user pods may reach the metadata server's DNS: {rule}"
    # Public addresses stay reachable (datasets, package indexes).
    assert any(_allows_ip(r.get("to", []), ipaddress.ip_address("151.101.0.223")) for r in egress)
    assert any(_allows_ip(r.get("to", []), ipaddress.ip_address("2a04:4e42::223")) for r in egress)
    # Who may reach a user pod: the hub and the proxy (z2jh's rules), nobody else by default.
    sources = [p["podSelector"]["matchLabels"] for r in spec["ingress"] for p in r.get("from", [])]
    assert {"hub.jupyter.org/network-access-singleuser": "true"} in sources
    find(objs, "Deployment", "hub")
    hub_pod = find(objs, "Deployment", "hub")["spec"]["template"]["metadata"]["labels"]
    proxy_pod = find(objs, "Deployment", "proxy")["spec"]["template"]["metadata"]["labels"]
    assert hub_pod.get("hub.jupyter.org/network-access-singleuser") == "true"
    assert proxy_pod.get("hub.jupyter.org/network-access-singleuser") == "true"
    for svc in ("courses", "sharing", "idle-culler"):
        labels = find(objs, "Deployment", f"slicerhub-{svc}")["spec"]["template"]["metadata"]["labels"]
        assert "hub.jupyter.org/network-access-singleuser" not in labels


def test_service_policies(deployment):
    _, _, objs = deployment
    for svc, port in (("courses", 8002), ("sharing", 8003), ("idle-culler", None)):
        spec = find(objs, "NetworkPolicy", f"slicerhub-{svc}")["spec"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == f"slicerhub-{svc}"
        assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
        if port:
            sources = {(p["podSelector"]["matchLabels"]["component"], tuple(x["port"] for x in r["ports"]))
                       for r in spec["ingress"] for p in r["from"]}
            # User servers publish to courses from JupyterLab; sharing sees only the proxy.
            assert sources == {("proxy", (port,))} | ({("singleuser-server", (port,))} if svc == "courses" else set())
            assert all(p["podSelector"]["matchLabels"]["release"] == RELEASE for r in spec["ingress"] for p in r["from"])
        else:
            assert spec["ingress"] == []
        targets = {(p.get("podSelector", {}).get("matchLabels", {}).get("component"), port_["port"])
                   for r in spec["egress"] for p in r["to"] for port_ in r["ports"]}
        expected = {("hub", 8081), (None, 53)} | ({("proxy", 8000)} if svc == "courses" else set())
        assert targets == expected
        assert not any("ipBlock" in p for r in spec["egress"] for p in r["to"])
    # User pods get one more way out: the courses port, on the courses pods only.
    out = find(objs, "NetworkPolicy", "slicerhub-courses-from-user-servers")["spec"]
    assert out["podSelector"]["matchLabels"] == {"component": "singleuser-server", "release": RELEASE}
    assert out["policyTypes"] == ["Egress"]
    assert out["egress"] == [{"to": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "slicerhub-courses", "app.kubernetes.io/instance": RELEASE}}}],
        "ports": [{"port": 8002}]}]
    assert not [o for o in objs if o["kind"] == "NetworkPolicy" and "from-user-servers" in o["metadata"]["name"]
                and "courses" not in o["metadata"]["name"]]
    # The hub's and proxy's own policies let the services in.
    hub_in = find(objs, "NetworkPolicy", "hub")["spec"]["ingress"]
    assert any(p.get("podSelector", {}).get("matchLabels") == {"hub.jupyter.org/network-access-hub": "true"}
               for r in hub_in for p in r.get("from", []))
    proxy_out = find(objs, "NetworkPolicy", "proxy")["spec"]["egress"]
    assert any(p.get("podSelector", {}).get("matchLabels", {}).get("slicerhub.org/proxied") == "true"
               for r in proxy_out for p in r.get("to", []))


# ------------------------------------------------------------- Chart.lock


def test_chart_lock_digest_is_what_helm_computes(tmp_path):
    """Helm's own `dependency build` checks the lock's digest against
    Chart.yaml first; here it gets past that check and stops only at the
    chart repository, which no machine here can reach."""
    for name in ("Chart.yaml", "Chart.lock"):
        shutil.copy(CHART / name, tmp_path / name)
    with pytest.raises(helm_python.HelmError) as e:
        helm_python.dependency_build(tmp_path, skip_refresh=True)
    assert "out of sync" not in str(e.value)
    lock = (tmp_path / "Chart.lock").read_text()
    (tmp_path / "Chart.lock").write_text(lock.replace("version: 4.4.0", "version: 4.3.0"))
    with pytest.raises(helm_python.HelmError, match="out of sync"):
        helm_python.dependency_build(tmp_path, skip_refresh=True)


def test_gitops_sites_bring_their_own_service_tokens():
    """helm template / Argo CD / Flux cannot read the Secret back: with
    serviceTokens.create false the chart makes none and the pods use the site's."""
    values = helm_values(demo_kube_data())
    values["slicerhub"]["serviceTokens"] = {"create": False}
    objs = objects(render(values))
    assert not [o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == "slicerhub-service-tokens"]
    pod = find(objs, "Deployment", "slicerhub-sharing")["spec"]["template"]["spec"]
    assert next(v for v in pod["volumes"] if v["name"] == "token")["secret"]["secretName"] == "slicerhub-service-tokens"

"""compose/ (docker-compose.yml, Dockerfile, nginx.conf) and compose/k8s/: the files parse, every
LOCKGATE_* variable they set is one `lockgate/settings.py` reads, the settings they give each
role are the ones the CLI would use, and the ports are the documented ones. (Docker itself
cannot run in CI; these checks catch drift between the deployment files and the code.)"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from lockgate import settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose"
K8S = COMPOSE / "k8s"

# DESIGN.md's "Ports and processes" table, as README.md shows it to users.
PORTS = {"proxy": 8000, "admin": 8001, "ui": 8002, "cluster": 8005, "status": 8100}


def settings_names() -> set[str]:
    """Every LOCKGATE_* name lockgate/settings.py reads."""
    return set(re.findall(r'"(LOCKGATE_[A-Z0-9_]+)"', (ROOT / "lockgate/settings.py").read_text()))


def interpolate(value: Any) -> str:
    """Compose's `${VAR:-default}` / `${VAR:?error}` / `${VAR}` with no VAR set: the default,
    or a stand-in for a required value."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        return arg if op == ":-" else f"<{name}>"

    return re.sub(r"\$\{([A-Z0-9_]+)(:-|:\?)?([^}]*)\}", one, str(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    return doc


def compose_env(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping (merge keys need it)"
    return {k: interpolate(v) for k, v in env.items()}


def test_compose_services_and_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "cluster-cert", "control-plane", "data-plane"} <= set(services)
    for name in ("cluster-cert", "control-plane", "data-plane"):
        assert services[name]["build"] == {"context": "..", "dockerfile": "compose/Dockerfile"}
        assert services[name]["image"] == "lockgate:local"
    assert services["control-plane"]["command"] == ["control-plane"]
    assert services["data-plane"]["command"] == ["data-plane"]

    dockerfile = (COMPOSE / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["python:3.11-slim"]
    assert re.search(r"^RUN pip install .*-e \.", dockerfile, re.M)
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["lockgate"\]', dockerfile, re.M)
    exposed = {int(p) for p in re.findall(r"^EXPOSE (.+)$", dockerfile, re.M)[0].split()}
    assert exposed == set(PORTS.values())
    # Everything the image needs from the source tree is copied in.
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.M))
    for package in ("gateway", "control_plane", "data_plane", "lockgate", "web"):
        assert package in copied
        assert (ROOT / package).is_dir()


def test_compose_sets_only_settings_the_code_reads(compose: dict[str, Any]) -> None:
    known = settings_names()
    for name, service in compose["services"].items():
        for variable in compose_env(service):
            if variable.startswith("LOCKGATE_"):
                assert variable in known, f"{name} sets {variable}, which settings.py never reads"


def test_compose_control_plane_settings(compose: dict[str, Any]) -> None:
    service = compose["services"]["control-plane"]
    cp = settings.control_plane(compose_env(service))
    assert cp.admin_listen == settings.Listen("0.0.0.0", PORTS["admin"])
    assert cp.ui_listen == settings.Listen("0.0.0.0", PORTS["ui"])
    assert cp.cluster_listen == settings.Listen("0.0.0.0", PORTS["cluster"])
    assert cp.database_url == "postgresql://lockgate:lockgate@postgres:5432/lockgate"
    assert cp.redis_url == "redis://redis:6379/0"
    assert cp.admin_token == "<LOCKGATE_ADMIN_TOKEN>"  # required: compose refuses to start without
    assert sorted(service["ports"]) == [f"{PORTS['admin']}:8001", f"{PORTS['ui']}:8002"]
    postgres = compose["services"]["postgres"]["environment"]
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]) == ("lockgate", "lockgate")
    assert service["depends_on"]["cluster-cert"] == {"condition": "service_completed_successfully"}
    assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
    check = " ".join(service["healthcheck"]["test"])
    assert f"http://127.0.0.1:{PORTS['admin']}/status" in check
    assert "Kong-Admin-Token" in check and "LOCKGATE_ADMIN_TOKEN" in check


def test_compose_data_plane_settings_and_scaling(compose: dict[str, Any]) -> None:
    services = compose["services"]
    service = services["data-plane"]
    dp = settings.data_plane(compose_env(service))
    cp = settings.control_plane(compose_env(services["control-plane"]))
    assert dp.proxy_listen == settings.Listen("0.0.0.0", PORTS["proxy"])
    assert dp.status_listen == settings.Listen("0.0.0.0", PORTS["status"])
    assert dp.control_plane == f"control-plane:{cp.cluster_listen.port}"
    assert dp.redis_url == cp.redis_url
    assert dp.tls == cp.tls
    assert dp.snapshot_cache == Path("/var/lib/lockgate/snapshot.json")
    # Scalable: replicas, and no fixed host port a second replica would clash on.
    assert service["deploy"]["replicas"] >= 2
    assert "ports" not in service
    assert sorted(service["expose"]) == [str(PORTS["proxy"]), str(PORTS["status"])]
    check = " ".join(service["healthcheck"]["test"])
    assert f"http://127.0.0.1:{PORTS['status']}/status/ready" in check
    assert service["sysctls"] == {"net.ipv4.tcp_migrate_req": 1}
    # The stable proxy URL: nginx on 8000 in front of the data-plane service name.
    proxy = services["proxy"]
    assert proxy["ports"] == [f"{PORTS['proxy']}:8000"]
    nginx = (COMPOSE / proxy["volumes"][0].split(":")[0].replace("./", "")).read_text()
    assert "listen 8000;" in nginx
    assert f"set $data_plane http://data-plane:{PORTS['proxy']};" in nginx
    assert "proxy_buffering off;" in nginx  # SSE streams


def test_compose_cluster_certificate_is_shared(compose: dict[str, Any]) -> None:
    services = compose["services"]
    cp_tls = settings.control_plane(compose_env(services["control-plane"])).tls
    cert_dir = str(PurePosixPath(str(cp_tls.cert)).parent)
    assert str(PurePosixPath(str(cp_tls.key)).parent) == cert_dir
    generate = services["cluster-cert"]["command"][0]
    assert f"--cert {cp_tls.cert}" in generate and f"--key {cp_tls.key}" in generate
    assert f"test -s {cp_tls.cert} ||" in generate  # once: a restart keeps the pair
    assert "cluster-cert" in compose["volumes"]
    assert services["cluster-cert"]["volumes"] == [f"cluster-cert:{cert_dir}"]
    for name in ("control-plane", "data-plane"):
        assert f"cluster-cert:{cert_dir}:ro" in services[name]["volumes"]


def k8s_docs() -> Iterator[dict[str, Any]]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), path
            yield doc


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_docs() if d["kind"] == kind}


def container_env(deployment: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """The environment of the deployment's container as Kubernetes would give it (secret
    values from secrets.yaml), and the container."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    config_maps, secrets = by_kind("ConfigMap"), by_kind("Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item["valueFrom"]:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]]["stringData"][ref["key"]]
        else:
            env[item["name"]] = "from-the-pod"
    return env, container


def test_k8s_manifests_parse_and_set_only_known_settings() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in k8s_docs()}
    for expected in (
        ("Deployment", "control-plane"),
        ("Deployment", "data-plane"),
        ("Service", "control-plane"),
        ("Service", "data-plane"),
        ("Secret", "lockgate-cluster-cert"),
        ("ConfigMap", "lockgate-config"),
    ):
        assert expected in kinds
    known = settings_names()
    for deployment in by_kind("Deployment").values():
        env, _ = container_env(deployment)
        for variable in env:
            if variable.startswith("LOCKGATE_"):
                assert variable in known, f"{variable} is never read by settings.py"


def _ports(container: Mapping[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def _service_ports(name: str) -> dict[str, tuple[int, int]]:
    service = by_kind("Service")[name]
    return {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}


def _cert_mount(deployment: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "cluster-cert"]
    assert volumes["cluster-cert"]["secret"]["secretName"] == "lockgate-cluster-cert"
    return str(mount["mountPath"])


def test_k8s_control_plane() -> None:
    deployment = by_kind("Deployment")["control-plane"]
    env, container = container_env(deployment)
    assert container["args"] == ["control-plane"]
    cp = settings.control_plane(env)
    assert (cp.admin_listen.port, cp.ui_listen.port, cp.cluster_listen.port) == (
        PORTS["admin"],
        PORTS["ui"],
        PORTS["cluster"],
    )
    assert cp.database_url.startswith("postgresql://lockgate:")
    assert cp.database_url.endswith("@postgres:5432/lockgate")
    assert cp.admin_token
    assert _ports(container) == {k: PORTS[k] for k in ("admin", "ui", "cluster")}
    assert _service_ports("control-plane") == {
        k: (PORTS[k], PORTS[k]) for k in ("admin", "ui", "cluster")
    }
    assert str(PurePosixPath(str(cp.tls.cert)).parent) == _cert_mount(deployment, container)
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_k8s_data_plane() -> None:
    deployment = by_kind("Deployment")["data-plane"]
    env, container = container_env(deployment)
    assert container["args"] == ["data-plane"]
    dp = settings.data_plane(env)
    assert (dp.proxy_listen.port, dp.status_listen.port) == (PORTS["proxy"], PORTS["status"])
    host, _, port = dp.control_plane.rpartition(":")
    assert (host, int(port)) == ("control-plane", _service_ports("control-plane")["cluster"][0])
    assert dp.redis_url == "redis://redis:6379/0"
    assert "redis" in by_kind("Service")
    assert _ports(container) == {"proxy": PORTS["proxy"], "status": PORTS["status"]}
    assert _service_ports("data-plane") == {
        "proxy": (PORTS["proxy"], PORTS["proxy"]),
        "status": (PORTS["status"], PORTS["status"]),
    }
    ready = container["readinessProbe"]["httpGet"]
    assert (ready["path"], ready["port"]) == ("/status/ready", PORTS["status"])
    assert deployment["spec"]["replicas"] >= 2
    assert str(PurePosixPath(str(dp.tls.cert)).parent) == _cert_mount(deployment, container)
    secret = by_kind("Secret")["lockgate-cluster-cert"]
    assert {PurePosixPath(str(dp.tls.cert)).name, PurePosixPath(str(dp.tls.key)).name} == set(
        secret["stringData"]
    )
    spec = deployment["spec"]["template"]["spec"]
    # The pod may take the drain (10 s of in-flight requests) plus the preStop pause.
    assert spec["terminationGracePeriodSeconds"] >= 20


def test_documented_ports() -> None:
    """README's table (DESIGN.md's numbers) names the same ports."""
    rows = re.findall(r"^\| (.+?) \| .* \| (\d+) \|$", (ROOT / "README.md").read_text(), re.M)
    documented = {label.split()[0].lower(): int(port) for label, port in rows}
    assert documented == {
        "proxy": PORTS["proxy"],
        "admin": PORTS["admin"],
        "web": PORTS["ui"],
        "cluster": PORTS["cluster"],
        "data-plane": PORTS["status"],
    }

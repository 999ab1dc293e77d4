#!/usr/bin/env python3
"""Checks the deployment examples: the Kubernetes manifests, the compose
stack and the alert annotations.

    python3 deploy/check_deploy.py --tollgate target/debug/tollgate

What it proves, section by section:

- alerts: every rule carries a severity, a summary and a description.
- kubernetes: every manifest validates, strictly, against the Kubernetes
  schemas kubernetes-validate bundles (the oldest version we support and the
  newest it knows); the ServiceMonitor, a custom resource with no bundled
  schema, is checked field by field instead. Then the parts agree with each
  other and with tollgate's config: ports, probe paths, the Secret behind
  secret_env, the config file inside the mounted ConfigMap, and a grace
  period longer than the preStop sleep plus drain_timeout. The ConfigMap's
  config passes `tollgate check`.
- compose: docker-compose.yml parses, every file it mounts or builds from
  exists, every path a container is told about (tollgate's --config,
  Prometheus's rule files, Grafana's dashboards) lands on a mounted file,
  and the config passes `tollgate check`.

Needs PyYAML and kubernetes-validate (.ci/assets installs them).
"""

import argparse
import os
import re
import secrets
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path, PurePosixPath

import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE / "prometheus" / "alerts.yml"
KUBERNETES = HERE / "kubernetes"
COMPOSE = HERE / "docker-compose.yml"

# The oldest Kubernetes the manifests support: the preStop `sleep` action is
# on by default from 1.30.
OLDEST_KUBERNETES = "1.30.0"
# Kinds with no schema in kubernetes-validate, checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor"}
SERVICEMONITOR_SPEC_KEYS = {"selector", "endpoints", "podTargetLabels", "targetLabels",
                            "namespaceSelector", "jobLabel", "sampleLimit"}
SERVICEMONITOR_ENDPOINT_KEYS = {"port", "path", "scheme", "interval", "scrapeTimeout",
                                "relabelings", "metricRelabelings", "honorLabels"}

failures = []


def check(condition, message):
    """Records a failure when condition is false; returns condition."""
    if not condition:
        failures.append(message)
    return bool(condition)


def passed(since, message):
    """Prints an ok line when no check failed since failure count `since`."""
    if len(failures) == since:
        print(f"ok: {message}")


def seconds(text):
    """Parses a duration such as "20s", "1m30s" or "500ms" to seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def tollgate_check(binary, config_text, what):
    """Runs `tollgate check` on a config with a throwaway secret."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "tollgate.toml"
        path.write_text(config_text)
        env = dict(os.environ, JWT_SECRET_KEY=secrets.token_hex(32))
        result = subprocess.run([binary, "check", "--config", str(path)], env=env,
                                capture_output=True, text=True, cwd=scratch)
    if check(result.returncode == 0, f"{what}: tollgate check failed: {result.stderr.strip()}"):
        print(f"ok: {what} passes tollgate check")


# -- alerts ----------------------------------------------------------------


def check_alerts():
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    since = len(failures)
    rules = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    for rule in rules:
        name = rule["alert"]
        annotations = rule.get("annotations", {})
        check(rule.get("labels", {}).get("severity") in ("critical", "warning"),
              f"alerts: {name}: severity must be critical or warning")
        for key in ("summary", "description"):
            check(annotations.get(key, "").strip(), f"alerts: {name}: no {key} annotation")
    passed(since, f"{len(rules)} alerts carry severity, summary and description")


# -- kubernetes ------------------------------------------------------------


def load_manifests():
    documents = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                documents.append((path.name, document))
    return documents


def validate_schemas(documents):
    since = len(failures)
    versions = [OLDEST_KUBERNETES, kubernetes_validate.latest_version()]
    for name, document in documents:
        what = f"{name}: {document['kind']}/{document['metadata']['name']}"
        if document["kind"] in CUSTOM_KINDS:
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(p) for p in error.path)
                check(False, f"{what}: not valid for Kubernetes {version}: {path}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError:
                check(False, f"{what}: no schema for Kubernetes {version}; a custom resource?")
    passed(since, f"manifests valid for Kubernetes {' and '.join(versions)} (strict schemas)")


def one(documents, kind, **where):
    found = [d for _, d in documents if d["kind"] == kind
             and all(d["metadata"].get(k) == v for k, v in where.items())]
    if not check(len(found) == 1, f"kubernetes: expected one {kind} {where or ''}, found {len(found)}"):
        raise SystemExit("\n".join(failures))
    return found[0]


def named_port(ports, name, key="name"):
    return next((p for p in ports if p.get(key) == name), None)


def check_servicemonitor(documents, services, tollgate):
    since = len(failures)
    monitor = one(documents, "ServiceMonitor")
    what = f"ServiceMonitor/{monitor['metadata'].get('name')}"
    check(monitor.get("apiVersion") == "monitoring.coreos.com/v1", f"{what}: apiVersion")
    spec = monitor.get("spec", {})
    check(not set(spec) - SERVICEMONITOR_SPEC_KEYS, f"{what}: unknown spec fields {set(spec) - SERVICEMONITOR_SPEC_KEYS}")

    selector = spec.get("selector", {}).get("matchLabels", {})
    selected = [s for s in services if selector and selector.items() <= s["metadata"].get("labels", {}).items()]
    check(len(selected) == 1, f"{what}: selector {selector} matches {len(selected)} Services, not one")
    ports = selected[0]["spec"]["ports"] if selected else []

    endpoints = spec.get("endpoints", [])
    check(endpoints, f"{what}: no endpoints")
    for endpoint in endpoints:
        unknown = set(endpoint) - SERVICEMONITOR_ENDPOINT_KEYS
        check(not unknown, f"{what}: unknown endpoint fields {unknown}")
        port = named_port(ports, endpoint.get("port"))
        check(port, f"{what}: endpoint port {endpoint.get('port')!r} is not a named port of the selected Service")
        admin = named_port(tollgate.get("ports", []), "admin")
        check(port and admin and port.get("targetPort") in ("admin", admin["containerPort"]),
              f"{what}: endpoint port does not lead to tollgate's admin port")
        check(endpoint.get("path") == "/metrics", f"{what}: path must be /metrics")
        interval, timeout = seconds(endpoint.get("interval", "30s")), seconds(endpoint.get("scrapeTimeout", "10s"))
        check(timeout <= interval, f"{what}: scrapeTimeout longer than interval")
        relabel_job = any(r.get("targetLabel") == "job" and r.get("replacement") == "tollgate"
                          for r in endpoint.get("relabelings", []))
        check(relabel_job, f"{what}: the alerts need job=\"tollgate\"; relabel it")
    check("app" in spec.get("podTargetLabels", []), f"{what}: the alerts group by app; add it to podTargetLabels")
    passed(since, f"{what} selects the admin port of one Service and labels job and app")


def check_kubernetes(binary):
    documents = load_manifests()
    validate_schemas(documents)
    since = len(failures)

    deployment = one(documents, "Deployment")
    configmap = one(documents, "ConfigMap")
    secret = one(documents, "Secret")
    services = [d for _, d in documents if d["kind"] == "Service"]
    pod = deployment["spec"]["template"]
    containers = pod["spec"]["containers"]
    tollgate = next(c for c in containers if c["name"] == "tollgate")
    app = next(c for c in containers if c["name"] != "tollgate")
    what = "kubernetes"

    # The config file tollgate is told to read is in the mounted ConfigMap.
    config_path = PurePosixPath(tollgate["args"][tollgate["args"].index("--config") + 1])
    mount = next(m for m in tollgate["volumeMounts"] if config_path.is_relative_to(m["mountPath"]))
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
    check(volume.get("configMap", {}).get("name") == configmap["metadata"]["name"],
          f"{what}: {config_path} is not on the ConfigMap's volume")
    check("subPath" not in mount, f"{what}: a subPath mount never sees ConfigMap updates")
    config_text = configmap["data"].get(config_path.name)
    if not check(config_text, f"{what}: ConfigMap has no key {config_path.name}"):
        return
    config = tomllib.loads(config_text)

    # Ports: config, container, Services and annotations agree.
    ports = {p["name"]: p["containerPort"] for p in tollgate["ports"]}
    listen_host, _, listen_port = config["listen"]["address"].rpartition(":")
    admin_host, _, admin_port = config["admin"]["address"].rpartition(":")
    check(int(listen_port) == ports.get("http"), f"{what}: listen.address port is not containerPort http")
    check(int(admin_port) == ports.get("admin"), f"{what}: admin.address port is not containerPort admin")
    check(admin_host == "0.0.0.0", f"{what}: admin.address must listen on the pod IP for probes and scrapes")
    annotations = pod["metadata"].get("annotations", {})
    check(annotations.get("prometheus.io/port") == str(ports.get("admin")), f"{what}: scrape annotation port")
    check(annotations.get("prometheus.io/path") == "/metrics", f"{what}: scrape annotation path")
    front = next((s for s in services if "clusterIP" not in s["spec"]), None)
    check(front and all(p["targetPort"] == "http" for p in front["spec"]["ports"]),
          f"{what}: the client-facing Service must send every port to tollgate's http port")
    check(config["upstream"]["url"].startswith("http://127.0.0.1:"),
          f"{what}: the upstream must be on loopback inside the pod")

    # Probes.
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
        get = tollgate.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and get.get("port") in ("admin", ports.get("admin")),
              f"{what}: {probe} must GET {path} on the admin port")

    # The secret behind secret_env.
    env = {e["name"]: e for e in tollgate.get("env", [])}
    for provider in config.get("providers", []):
        name = provider.get("secret_env")
        if not name:
            continue
        ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef", {})
        check(ref.get("name") == secret["metadata"]["name"] and ref.get("key") in secret.get("stringData", {}),
              f"{what}: {name} must come from the Secret's key")
        placeholder = secret.get("stringData", {}).get(ref.get("key"), "")
        check(len(placeholder.encode()) < 32, f"{what}: the placeholder secret must stay too short to start with")

    # Shutdown: grace period > preStop sleep + drain_timeout, and the app
    # outlives tollgate's drain.
    drain = seconds(config["listen"].get("drain_timeout", "20s"))
    sleep = tollgate.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    app_sleep = app.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    check(sleep > 0, f"{what}: tollgate needs a preStop sleep")
    check(grace > sleep + drain, f"{what}: terminationGracePeriodSeconds {grace} <= preStop {sleep} + drain {drain}")
    check(app_sleep >= sleep + drain, f"{what}: the app stops before tollgate has drained")
    check(grace > app_sleep, f"{what}: no time left for the app to stop")

    resources = tollgate.get("resources", {})
    check(resources.get("requests") and resources.get("limits"), f"{what}: tollgate needs requests and limits")
    passed(since, "ports, probes, Secret, ConfigMap mount and resources agree; "
           f"shutdown fits: preStop {sleep}s + drain {drain:g}s < grace {grace}s")

    check_servicemonitor(documents, services, tollgate)
    tollgate_check(binary, config_text, "the ConfigMap's tollgate.toml")


# -- compose ---------------------------------------------------------------


def mounts(service, base):
    """Returns {container path: host path} for a service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            host = (base / source).resolve()
            check(host.exists(), f"compose: {source} does not exist")
            found[PurePosixPath(target)] = host
    return found


def in_container(mounted, path, what):
    """Resolves a path inside a container to the mounted host file."""
    path = PurePosixPath(path)
    for target, host in mounted.items():
        if path == target or path.is_relative_to(target):
            resolved = host / path.relative_to(target) if path != target else host
            if check(resolved.is_file(), f"compose: {what}: {path} resolves to {resolved}, not a file"):
                return resolved
            return None
    check(False, f"compose: {what}: {path} is not on any mount")
    return None


def check_compose(binary):
    since = len(failures)
    base = COMPOSE.parent
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    check({"echo", "tollgate", "prometheus", "grafana"} <= set(services), "compose: a service is missing")

    tollgate = services["tollgate"]
    context = (base / tollgate["build"]["context"]).resolve()
    check((context / tollgate["build"].get("dockerfile", "Dockerfile")).is_file(), "compose: no Dockerfile")
    command = tollgate["command"]
    config_file = in_container(mounts(tollgate, base), command[command.index("--config") + 1], "tollgate")
    check("JWT_SECRET_KEY" in tollgate.get("environment", {}), "compose: tollgate needs JWT_SECRET_KEY")
    if config_file:
        config = tomllib.loads(config_file.read_text())
        drain = seconds(config["listen"].get("drain_timeout", "20s"))
        check(seconds(tollgate.get("stop_grace_period", "10s")) > drain,
              "compose: stop_grace_period must exceed drain_timeout")
        echo_listen = services["echo"]["command"][-1]
        check(config["upstream"]["url"] == f"http://echo:{echo_listen.rpartition(':')[2]}",
              "compose: tollgate's upstream is not the echo service")
        tollgate_check(binary, config_file.read_text(), "the compose tollgate.toml")
    in_container(mounts(services["echo"], base), services["echo"]["command"][1], "echo")

    prometheus_mounts = mounts(services["prometheus"], base)
    config_path = PurePosixPath("/etc/prometheus/prometheus.yml")
    prometheus_file = in_container(prometheus_mounts, config_path, "prometheus")
    if prometheus_file:
        prometheus = yaml.safe_load(prometheus_file.read_text())
        for rule_file in prometheus.get("rule_files", []):
            in_container(prometheus_mounts, config_path.parent / rule_file, "prometheus rule_files")
        jobs = [j for j in prometheus["scrape_configs"] if j["job_name"] == "tollgate"]
        targets = [t for j in jobs for s in j["static_configs"] for t in s["targets"]]
        admin_port = config["admin"]["address"].rpartition(":")[2] if config_file else "?"
        check(targets == [f"tollgate:{admin_port}"], "compose: Prometheus must scrape tollgate's admin port as job tollgate")

    grafana_mounts = mounts(services["grafana"], base)
    provisioning = grafana_mounts.get(PurePosixPath("/etc/grafana/provisioning"))
    if check(provisioning, "compose: Grafana provisioning is not mounted"):
        for provider_file in (provisioning / "dashboards").glob("*.yml"):
            for provider in yaml.safe_load(provider_file.read_text())["providers"]:
                folder = PurePosixPath(provider["options"]["path"])
                in_container(grafana_mounts, folder / "tollgate.json", "grafana dashboards")
        for source_file in (provisioning / "datasources").glob("*.yml"):
            for source in yaml.safe_load(source_file.read_text())["datasources"]:
                check(source["url"].startswith("http://prometheus:"), "compose: Grafana must read the prometheus service")
    passed(since, "compose parses and every file it names exists where the containers look")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tollgate", required=True, help="the tollgate binary, for `tollgate check`")
    binary = str(Path(parser.parse_args().tollgate).resolve())

    check_alerts()
    check_kubernetes(binary)
    check_compose(binary)
    if failures:
        print("\n".join(f"FAILED: {failure}" for failure in failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ordered helm/kubectl commands that install a rendered stack: operators and their CRDs,
the object store, the storage engines, collectors, Grafana, then the own objects, readiness
and an end-to-end ``kms verify`` through port-forwards. Pure: the commands are data, so tests
compare the exact sequence and ``--dry-run`` prints it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kms.deploy.profiles import Part, Release

__all__ = ["Step", "PHASES", "part_steps", "verify_ports"]

# Install order: CRDs and operators first (ServiceMonitors, Instrumentation need them), the store
# before the engines that write to it, engines before the collectors that write to them.
PHASES: list[tuple[str, tuple[str, ...]]] = [
    ("operators and CRDs", ("prometheus", "prometheus-crds", "operator")),
    ("object store", ("seaweedfs", "minio")),
    ("storage engines", ("mimir", "loki", "tempo")),
    ("collectors", ("collector", "kube-state-metrics", "postgres-exporter", "redis-exporter")),
    ("grafana", ("grafana",)),
]


@dataclass(frozen=True)
class Step:
    title: str
    argv: list[str]
    background: bool = False  # port-forwards: started, then stopped after verify
    wait_port: int = 0  # background steps: the local port that must accept connections first
    env: dict[str, str] = field(default_factory=dict)


def _phase(r: Release) -> int:
    for i, (_, members) in enumerate(PHASES):
        if r.chart_key in members:
            return i
    raise RuntimeError(f"BUG: chart {r.chart_key!r} has no install phase")


def _ctx(context: str) -> list[str]:
    return ["--kube-context", context] if context else []


def _kctx(context: str) -> list[str]:
    return ["--context", context] if context else []


def verify_ports(part: Part) -> dict[str, tuple[str, int, int]]:
    """API -> (service, service port, local port) the verify step port-forwards."""
    name = part.stack.name
    if any(o["kind"] == "StatefulSet" and o["metadata"]["name"] == name for o in part.objects):
        return {"kms": (name, 3200, 13200), "otlp": (name, 4318, 14318)}
    aliases = {r.alias for r in part.releases}
    thanos = any(o["metadata"]["name"] == f"{name}-thanos-query" for o in part.objects)
    if not {"loki", "tempo", "collector"} <= aliases or not ("mimir" in aliases or thanos):
        return {}  # an agent-only cluster: verified through the central part
    prom = (f"{name}-thanos-query", 9090, 19090) if thanos else (f"{name}-mimir-gateway", 80, 18080)
    return {"prometheus": prom, "loki": (f"{name}-loki-gateway", 80, 13100),
            "tempo": (f"{name}-tempo", 3200, 13200), "otlp": (f"{name}-collector", 4318, 14318)}  # fmt: skip


def _helm(part: Part, r: Release, root: Path, context: str, timeout: str) -> Step:
    s = part.stack
    return Step(f"[{part.path or s.cluster}] {PHASES[_phase(r)][0]}: {r.alias} ({r.pin.chart} {r.pin.version})", [
        "helm", "upgrade", "--install", f"{s.name}-{r.alias}", r.pin.chart, "--repo", r.pin.repository,
        "--version", r.pin.version, "--namespace", s.namespace, "--create-namespace",
        # Same object names as inside the umbrella chart: <release>-<alias>-...
        "--values", str(root / "values" / f"{r.alias}.yaml"), "--set", f"nameOverride={r.alias}",
        "--wait", "--timeout", timeout, *_ctx(context)])  # fmt: skip


def part_steps(part: Part, root: Path, *, context: str = "", timeout: str = "10m", verify: bool = True) -> list[Step]:
    """``root``: the part's rendered directory (values/, manifests/)."""
    s = part.stack
    ns, steps = s.namespace, []
    where = f"[{part.path or s.cluster}]"
    releases = sorted(part.releases, key=_phase)
    last = len(PHASES) - 1  # Grafana mounts the dashboard ConfigMaps: own objects go before it
    for i, r in enumerate([r for r in releases if _phase(r) < last]):
        steps.append(_helm(part, r, root, context, timeout))
        if i == 0 and part.secrets:
            # After the first release (its --create-namespace makes the namespace), before the store
            # and engines whose pods read the credentials at start.
            steps.append(Step(f"{where} secrets ({len(part.secrets)})", [
                "kubectl", "apply", "--server-side", "--field-manager", "kms", "--namespace", ns,
                "--filename", str(root / "secrets"), *_kctx(context)]))  # fmt: skip
    if part.objects:
        # Server-side apply: dashboard ConfigMaps exceed the client-side annotation limit.
        steps.append(Step(f"{where} own objects ({len(part.objects)})", [
            "kubectl", "apply", "--server-side", "--field-manager", "kms", "--namespace", ns,
            "--filename", str(root / "manifests"), *_kctx(context)]))  # fmt: skip
    for o in part.objects:
        if o["kind"] in ("StatefulSet", "DaemonSet", "Deployment"):
            steps.append(Step(f"{where} ready: {o['kind'].lower()}/{o['metadata']['name']}", [
                "kubectl", "rollout", "status", f"{o['kind'].lower()}/{o['metadata']['name']}", "--namespace", ns,
                "--timeout", timeout, *_kctx(context)]))  # fmt: skip
    for r in [r for r in releases if _phase(r) == last]:
        steps.append(_helm(part, r, root, context, timeout))
    ports = verify_ports(part) if verify else {}
    for api, (svc, port, local) in sorted(ports.items(), key=lambda kv: kv[1][2]):
        steps.append(Step(f"{where} port-forward {api}: svc/{svc} {local}:{port}", [
            "kubectl", "port-forward", "--namespace", ns, f"svc/{svc}", f"{local}:{port}", *_kctx(context)],
            background=True, wait_port=local))  # fmt: skip
    if ports:
        local = {api: f"http://127.0.0.1:{p[2]}" for api, p in ports.items()}
        # Mimir and kms serve the Prometheus API under /prometheus; Thanos query at its root.
        thanos = ports.get("prometheus", ("",))[0].endswith("-thanos-query")
        prom = local["prometheus"] if thanos else f"{local.get('prometheus', local.get('kms'))}/prometheus"
        steps.append(Step(f"{where} verify every correlation link", [
            "kms", "verify", "--prometheus", prom, "--loki", local.get("loki", local.get("kms", "")),
            "--tempo", local.get("tempo", local.get("kms", "")), "--otlp", local["otlp"], "--tenant", s.tenant]))
    return steps

"""The stack file (``kms.yaml``): one typed description of a deployment that every profile renders.

Field names are the YAML keys. Defaults give a working single-cluster stack with an in-cluster
S3-compatible store, so an empty file is valid."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "PROFILES",
    "STORE_TYPES",
    "Buckets",
    "Storage",
    "LokiSettings",
    "PostgresExporter",
    "RedisExporter",
    "NodeExporter",
    "Exporters",
    "Instrumentation",
    "Small",
    "MultiCluster",
    "Grafana",
    "Stack",
]

PROFILES = ("single-cluster", "small", "multi-cluster")
# external: any S3 endpoint you run; seaweedfs: maintained in-cluster store; minio: archived upstream.
STORE_TYPES = ("external", "seaweedfs", "minio")
PROPAGATORS = ("tracecontext", "baggage", "b3", "b3multi", "jaeger", "xray", "ottrace", "none")
SAMPLERS = ("always_on", "always_off", "traceidratio", "parentbased_always_on",
            "parentbased_always_off", "parentbased_traceidratio", "jaeger_remote",
            "parentbased_jaeger_remote")  # fmt: skip


@dataclass
class Buckets:
    mimir_blocks: str = "mimir-blocks"
    mimir_ruler: str = "mimir-ruler"
    loki_chunks: str = "loki-chunks"
    loki_ruler: str = "loki-ruler"
    loki_admin: str = "loki-admin"
    tempo: str = "tempo-traces"
    thanos: str = "thanos-blocks"  # multi_cluster.central thanos only


@dataclass
class Storage:
    type: str = "seaweedfs"
    endpoint: str = ""  # external only: host:port, no scheme (Tempo and Mimir refuse one)
    region: str = "us-east-1"
    insecure: bool = True  # plain http to the store (in-cluster stores speak http)
    # The keys go into a Secret kms renders (secrets/), never into chart values. Or name an existing
    # Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus seaweedfs_s3_config for seaweedfs,
    # rootUser and rootPassword for minio) and leave the keys at their defaults.
    credentials_secret: str = ""
    access_key: str = "kms"
    secret_key: str = "change-me-please"
    size: str = "50Gi"  # volume of an in-cluster store
    buckets: Buckets = field(default_factory=Buckets)


@dataclass
class LokiSettings:
    write_replicas: int = 3  # >= replication_factor, or pushes fail "at least 2 live replicas required"
    read_replicas: int = 2
    backend_replicas: int = 2
    replication_factor: int = 3


@dataclass
class PostgresExporter:
    name: str = ""
    host: str = ""
    port: int = 5432
    database: str = "postgres"
    user: str = "postgres"
    password_secret: str = ""  # Secret holding the password under the key `password`
    sslmode: str = "disable"


@dataclass
class RedisExporter:
    name: str = ""
    address: str = ""  # redis://host:6379
    password_secret: str = ""  # Secret holding the password under the key `password`


@dataclass
class NodeExporter:
    """A node exporter outside the cluster, scraped through Service + EndpointSlice + ServiceMonitor."""

    name: str = ""
    addresses: list[str] = field(default_factory=list)  # IPv4 addresses
    port: int = 9100


@dataclass
class Exporters:
    postgres: list[PostgresExporter] = field(default_factory=list)
    redis: list[RedisExporter] = field(default_factory=list)
    node: list[NodeExporter] = field(default_factory=list)


@dataclass
class Instrumentation:
    enabled: bool = True
    propagators: list[str] = field(default_factory=lambda: ["tracecontext", "baggage"])
    sampler: str = "parentbased_traceidratio"
    sampler_argument: str = "1"  # the CRD wants a string


@dataclass
class Small:
    """The ``small`` profile: kms itself as a StatefulSet plus a kms agent DaemonSet."""

    image: str = "ghcr.io/kube-monitoring-stack/kms:0.1.0"
    storage_size: str = "20Gi"
    retention: str = "720h"


@dataclass
class MultiCluster:
    """The ``multi-cluster`` profile: agents in every cluster, Mimir and Grafana in the central one."""

    clusters: list[str] = field(default_factory=list)  # workload clusters; each gets an agent release
    agent: str = "prometheus"  # prometheus (agent mode) | kms
    # mimir: agents remote-write into the central Mimir. thanos: each cluster's Prometheus keeps its
    # data and a Thanos sidecar uploads blocks to the (external) store; the central Thanos query,
    # store gateway, compactor and ruler read them.
    central: str = "mimir"
    # thanos: each workload cluster's sidecar gRPC as the central query reaches it; {cluster} is
    # replaced by the cluster's name, e.g. "thanos-{cluster}.example.com:10901".
    thanos_sidecar_address: str = ""
    central_url: str = ""  # the central Mimir gateway as the agents reach it, e.g. https://mimir.example.com
    # Logs and traces of the workload clusters go straight to the central Loki and Tempo (OTLP/HTTP).
    central_loki_url: str = ""  # the central Loki gateway, e.g. https://loki.example.com (OTLP at /otlp)
    central_tempo_url: str = ""  # the central Tempo's OTLP/HTTP receiver, e.g. https://tempo-otlp.example.com


@dataclass
class Grafana:
    admin_user: str = "admin"
    admin_password: str = ""  # empty: the chart generates one into its Secret
    kubernetes_dashboards: bool = True  # cluster, nodes, namespaces and pods dashboards, embedded
    # Dashboard JSON files or directories embedded at render time (folder "imported").
    import_dashboards: list[str] = field(default_factory=list)


@dataclass
class Stack:
    name: str = "kms"  # Helm release name; prefixes every service name
    namespace: str = "monitoring"
    cluster: str = "local"  # the `cluster` label on every series
    profile: str = "single-cluster"
    tenant: str = "anonymous"  # X-Scope-OrgID of every writer and reader
    registry: str = ""  # air-gapped: every image is pulled from this registry instead
    alerting: bool = True  # PrometheusRules of the charts plus kms's own
    cert_manager: bool = False  # cert-manager is installed: the operator's webhook certificates come from it
    storage: Storage = field(default_factory=Storage)
    loki: LokiSettings = field(default_factory=LokiSettings)
    exporters: Exporters = field(default_factory=Exporters)
    instrumentation: Instrumentation = field(default_factory=Instrumentation)
    small: Small = field(default_factory=Small)
    multi_cluster: MultiCluster = field(default_factory=MultiCluster)
    grafana: Grafana = field(default_factory=Grafana)

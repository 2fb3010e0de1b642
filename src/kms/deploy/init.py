"""``kms init``: a commented stack file whose values are the defaults (a test keeps them equal)."""

from __future__ import annotations

__all__ = ["STACK_FILE"]

STACK_FILE = """\
# kms.yaml: one description of the stack; `kms render --profile NAME -o DIR` turns it into an
# umbrella Helm chart, values per chart and plain manifests. Every key is optional.

name: kms                 # Helm release name; prefixes every service (kms-mimir-gateway, ...)
namespace: monitoring
cluster: local            # the `cluster` label on every series (dashboards' cluster picker)
profile: single-cluster   # single-cluster | small | multi-cluster (--profile overrides it)
tenant: anonymous         # X-Scope-OrgID that every writer sends and Grafana reads with
registry: ""              # air-gapped: pull every image from this registry (see `kms images`)
alerting: true            # the charts' alerting rules plus kms's own PrometheusRule
cert_manager: false       # true if cert-manager is installed (operator webhook certificates)

storage:                  # one S3-compatible store for Mimir, Loki and Tempo
  type: seaweedfs         # seaweedfs (in-cluster, maintained) | minio (archived upstream) | external
  endpoint: ""            # external only: host:port, without http:// (Tempo and Mimir refuse a scheme)
  region: us-east-1
  insecure: true          # plain http to the store
  credentials_secret: ""  # an existing Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (seaweedfs:
                          # also seaweedfs_s3_config; minio: rootUser, rootPassword); empty: kms renders
                          # one from the two keys below into secrets/ (never into chart values)
  access_key: kms
  secret_key: change-me-please
  size: 50Gi              # volume of the in-cluster store
  buckets:
    mimir_blocks: mimir-blocks
    mimir_ruler: mimir-ruler      # also Mimir's alertmanager storage
    loki_chunks: loki-chunks
    loki_ruler: loki-ruler
    loki_admin: loki-admin
    tempo: tempo-traces
    thanos: thanos-blocks         # multi_cluster.central thanos only

loki:                     # SimpleScalable mode
  write_replicas: 3       # keep >= replication_factor, or pushes fail
  read_replicas: 2
  backend_replicas: 2
  replication_factor: 3

exporters:                # scraped with ServiceMonitors (agents in the small profile)
  postgres: []            # - {name: orders, host: orders-db.shop.svc, port: 5432, database: orders,
                          #    user: exporter, password_secret: orders-db-exporter, sslmode: disable}
  redis: []               # - {name: cache, address: "redis://cache.shop.svc:6379", password_secret: ""}
  node: []                # outside the cluster: - {name: db1, addresses: [10.0.0.5], port: 9100}

instrumentation:          # OpenTelemetry Operator auto-instrumentation (single-cluster)
  enabled: true
  propagators: [tracecontext, baggage]
  sampler: parentbased_traceidratio
  sampler_argument: "1"   # a string, as the CRD wants

small:                    # profile small: kms itself in the cluster
  image: ghcr.io/kube-monitoring-stack/kms:0.1.0
  storage_size: 20Gi
  retention: 720h

multi_cluster:            # profile multi-cluster: this file's cluster is the central one
  clusters: []            # workload clusters, e.g. [prod-eu, prod-us]; each gets an agent release
  agent: prometheus       # prometheus (agent mode) | kms
  central: mimir          # mimir | thanos (sidecars upload to storage, which must be external; agent prometheus)
  thanos_sidecar_address: ""  # thanos: each cluster's sidecar gRPC as the central query reaches it,
                          # {cluster} replaced, e.g. "thanos-{cluster}.example.com:10901"
  central_url: ""         # the central Mimir gateway as the workload clusters reach it
  central_loki_url: ""    # the central Loki gateway as they reach it (logs, OTLP at /otlp)
  central_tempo_url: ""   # the central Tempo's OTLP/HTTP receiver as they reach it (traces)

grafana:
  admin_user: admin
  admin_password: ""      # empty: the chart generates one; set: kms renders it into a Secret (secrets/)
  kubernetes_dashboards: true   # cluster, nodes, namespaces, pods; embedded, not downloaded
  import_dashboards: []   # dashboard JSON files or directories embedded at render time, e.g. the
                          # dotdc Kubernetes dashboards: [dashboards/dotdc]
"""

"""A small Kubernetes API client: credentials (in-cluster service account or kubeconfig), list and
watch of any resource, and an informer that keeps a live copy of a resource's objects. On top of
it: ``kubernetes_sd_configs`` discovery (:class:`KubernetesDiscovery`, made by a
:class:`DiscoveryFactory` so jobs share watches) and ServiceMonitor /
PodMonitor objects turned into scrape configs (:func:`monitors_to_scrape_configs`,
:class:`MonitorWatcher`)."""

from kms.kube.client import KubeClient, KubeError
from kms.kube.credentials import KubeCredentials, load_credentials
from kms.kube.informer import Informer
from kms.kube.monitors import MonitorOptions, monitors_to_scrape_configs
from kms.kube.monitors_watch import MonitorWatcher
from kms.kube.sd import DiscoveryFactory, KubernetesDiscovery
from kms.kube.sd_config import KubeSDConfig, parse_sd_config

__all__ = ["DiscoveryFactory", "Informer", "KubeClient", "KubeCredentials", "KubeError", "KubeSDConfig",
           "KubernetesDiscovery", "MonitorOptions", "MonitorWatcher", "load_credentials",
           "monitors_to_scrape_configs", "parse_sd_config"]

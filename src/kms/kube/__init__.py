"""A small Kubernetes API client: credentials (in-cluster service account or kubeconfig), list and
watch of any resource, and an informer that keeps a live copy of a resource's objects."""

from kms.kube.client import KubeClient, KubeError
from kms.kube.credentials import KubeCredentials, load_credentials
from kms.kube.informer import Informer

__all__ = ["Informer", "KubeClient", "KubeCredentials", "KubeError", "load_credentials"]

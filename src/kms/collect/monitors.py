"""ServiceMonitor and PodMonitor objects as jobs of a running :class:`ScrapeManager`: a
:class:`~kms.kube.MonitorWatcher` derives the Operator's scrape configs whenever the monitors
change, and they become the manager's ``"monitors"`` group (jobs added, changed and removed in
place). A config that does not load is logged and left out; the others run.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from kms.collect.config import load_each
from kms.collect.manager import ScrapeManager
from kms.kube import KubeClient, MonitorOptions, MonitorWatcher, load_credentials

__all__ = ["MONITORS_GROUP", "MonitorJobs"]

log = logging.getLogger("kms.collect")

MONITORS_GROUP = "monitors"


class MonitorJobs:
    """``kubeconfig`` empty: the pod's service account, else ``$KUBECONFIG`` or ``~/.kube/config``
    (missing credentials are a :class:`~kms.errors.BadInput` here). ``global_doc``: the
    Prometheus ``global`` section whose defaults (interval, timeout, limits) the jobs get."""

    def __init__(self, manager: ScrapeManager, kubeconfig: str = "", namespaces: list[str] | None = None,
                 label_selector: str = "", role: str = "endpoints", global_doc: dict | None = None,
                 watch_timeout_s: int = 300):
        self.manager = manager
        self.global_doc = global_doc or {}
        creds = load_credentials(kubeconfig)
        # the generated kubernetes_sd_configs name the same file, so discovery uses the same credentials
        options = MonitorOptions(default_role=role, kubeconfig_file=str(Path(kubeconfig).resolve()) if kubeconfig else "")
        self.options = options  # its files_dir (TLS material from secrets) is a temporary directory
        self.errors: dict[str, str] = {}  # job name -> why its config did not load
        self.watcher = MonitorWatcher(lambda: KubeClient(creds), self._on_configs, namespaces, label_selector, options,
                                      watch_timeout_s=watch_timeout_s)

    def _on_configs(self, configs: list[dict]) -> None:
        jobs, errors = load_each(configs, self.global_doc, "from a ServiceMonitor/PodMonitor")
        for name, err in errors.items():
            if self.errors.get(name) != err:
                log.error("scrape job %s skipped: %s", name, err)
        self.errors = errors
        self.manager.set_jobs(MONITORS_GROUP, jobs)

    def start(self) -> None:
        self.watcher.start()

    def stop(self) -> None:
        self.watcher.stop()
        if self.options.files_dir:  # secrets written as files do not outlive the agent
            shutil.rmtree(self.options.files_dir, ignore_errors=True)

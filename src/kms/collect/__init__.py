"""Collection: Prometheus pull scraping inside the stack.

``load_jobs`` reads Prometheus-format ``global`` + ``scrape_configs``; a :class:`ScrapeManager`
scrapes their targets (static, file and Kubernetes discovery) into a sink (the receiver's sample
path) and takes changed jobs while running (``set_jobs``: ServiceMonitors through
:class:`MonitorJobs`, reloads through :func:`reload_jobs`); ``targets_data`` and friends shape what
``/api/v1/targets`` answers.
"""

from kms.collect.config import ScrapeJob, load_jobs, reload_jobs
from kms.collect.manager import CONFIG_GROUP, ScrapeManager
from kms.collect.monitors import MonitorJobs
from kms.collect.status import scrape_pools, targets_data, targets_metadata

__all__ = ["CONFIG_GROUP", "MonitorJobs", "ScrapeJob", "ScrapeManager", "load_jobs", "reload_jobs", "scrape_pools",
           "targets_data", "targets_metadata"]

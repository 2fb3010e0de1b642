"""Collection: Prometheus pull scraping inside the stack.

``load_jobs`` reads Prometheus-format ``global`` + ``scrape_configs``; a :class:`ScrapeManager`
scrapes their targets into a sink (the receiver's sample path); ``targets_data`` and friends
shape what ``/api/v1/targets`` answers.
"""

from kms.collect.config import ScrapeJob, load_jobs
from kms.collect.manager import ScrapeManager
from kms.collect.status import scrape_pools, targets_data, targets_metadata

__all__ = ["ScrapeJob", "ScrapeManager", "load_jobs", "scrape_pools", "targets_data", "targets_metadata"]

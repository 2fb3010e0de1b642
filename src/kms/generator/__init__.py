"""The metrics generator (Tempo's span metrics and service graphs) inside ``kms up``.

Modules: ``names`` (every metric and label name), ``registry`` (cumulative counters and
histograms per tenant), ``spanmetrics`` and ``servicegraphs`` (the two processors), ``lookup``
(attribute values as label strings), ``generator`` (tenants, flush loop), ``remote`` (remote
write of the generated series).
"""

from kms.generator.generator import Generator, GeneratorSettings, TenantGenerator
from kms.generator.registry import Registry
from kms.generator.remote import RemoteWriter
from kms.generator.servicegraphs import ServiceGraphs
from kms.generator.spanmetrics import SpanMetrics

__all__ = ["Generator", "GeneratorSettings", "TenantGenerator", "Registry", "RemoteWriter", "ServiceGraphs",
           "SpanMetrics"]

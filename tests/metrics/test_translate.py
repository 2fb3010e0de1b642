"""OTLP metrics -> Prometheus series, checked against Prometheus's default translation rules."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1 import resource_pb2

from kms.errors import BadInput
from kms.metrics import translate as tr
from kms.metrics.samples import is_stale
from kms.testing import anyvalue as any_value

CUM = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = pb.AGGREGATION_TEMPORALITY_DELTA
T = 1_700_000_000_123_456_789  # ns
T_MS = T // 1_000_000


def kvs(target, attrs: dict):
    for k, v in attrs.items():
        a = target.add(key=k)
        if isinstance(v, bool):
            a.value.bool_value = v
        elif isinstance(v, int):
            a.value.int_value = v
        elif isinstance(v, float):
            a.value.double_value = v
        elif isinstance(v, bytes):
            a.value.bytes_value = v
        elif isinstance(v, list):
            for x in v:
                a.value.array_value.values.add(string_value=x)
        else:
            a.value.string_value = v


def resource(**attrs) -> bytes:
    r = resource_pb2.Resource()
    kvs(r.attributes, {k.replace("__", "."): v for k, v in attrs.items()})
    return r.SerializeToString()


SVC = resource(service__name="api", service__namespace="shop", service__instance__id="pod-1", host__name="h1")


def number_points(dps, points):
    for value, attrs, *rest in points:
        p = dps.add(time_unix_nano=T)
        if isinstance(value, int):
            p.as_int = value
        else:
            p.as_double = value
        kvs(p.attributes, attrs)
        if rest:
            p.flags = rest[0]
    return dps


def gauge(name, unit="", points=((1.5, {}),), description=""):
    m = pb.Metric(name=name, unit=unit, description=description)
    number_points(m.gauge.data_points, points)
    return m


def sum_(name, unit="", points=((3, {}),), monotonic=True, temporality=CUM):
    m = pb.Metric(name=name, unit=unit)
    m.sum.is_monotonic, m.sum.aggregation_temporality = monotonic, temporality
    number_points(m.sum.data_points, points)
    return m


def series_names(batch) -> set[str]:
    return {dict(ls)["__name__"] for ls in batch.series}


def only(batch, name):
    """{labels without __name__: [values]} of the series called ``name``."""
    out = {}
    for ls, pts in batch.by_series().items():
        d = dict(ls)
        if d.pop("__name__") == name:
            out[tuple(sorted(d.items()))] = [v for _, v in pts]
    return out


# ---------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name, unit, kind, with_suffixes, without",
    [
        ("http.server.request.duration", "s", tr.HISTOGRAM, "http_server_request_duration_seconds", "http_server_request_duration"),
        ("requests.count", "1", tr.COUNTER, "requests_count_total", "requests_count"),
        ("memory.usage", "By", tr.GAUGE, "memory_usage_bytes", "memory_usage"),
        ("cpu.utilization", "1", tr.GAUGE, "cpu_utilization_ratio", "cpu_utilization"),
        ("cpu.utilization", "1", tr.NON_MONOTONIC_COUNTER, "cpu_utilization", "cpu_utilization"),
        ("hits_ratio", "1", tr.GAUGE, "hits_ratio", "hits_ratio"),
        ("total.requests", "", tr.COUNTER, "requests_total", "total_requests"),
        ("requests_total", "", tr.COUNTER, "requests_total", "requests_total"),
        ("network.io", "By/s", tr.COUNTER, "network_io_bytes_per_second_total", "network_io"),
        ("throughput", "{packets}/s", tr.GAUGE, "throughput_per_second", "throughput"),
        ("queue.size", "{items}", tr.GAUGE, "queue_size", "queue_size"),
        ("latency_seconds", "s", tr.HISTOGRAM, "latency_seconds", "latency_seconds"),
        ("temp", "Cel", tr.GAUGE, "temp_celsius", "temp"),
        ("disk", "MiBy", tr.GAUGE, "disk_mebibytes", "disk"),
        ("rate", "m/mo", tr.GAUGE, "rate_meters_per_month", "rate"),
        ("odd", "foo", tr.GAUGE, "odd_foo", "odd"),
        ("pct", "%", tr.GAUGE, "pct_percent", "pct"),
        ("2xx.responses", "", tr.COUNTER, "_2xx_responses_total", "_2xx_responses"),
        ("a__b...c", "", tr.GAUGE, "a_b_c", "a__b_c"),
        ("http.server:duration", "ms", tr.HISTOGRAM, "http_server:duration_milliseconds", "http_server:duration"),
        ("größe", "", tr.GAUGE, "gr_e", "gr_e"),
        ("...", "", tr.GAUGE, "", ""),
    ],
)
def test_metric_name(name, unit, kind, with_suffixes, without):
    assert tr.metric_name(name, unit, kind) == with_suffixes
    assert tr.metric_name(name, unit, kind, add_suffixes=False) == without


@pytest.mark.parametrize(
    "key, label",
    [
        ("http.method", "http_method"),
        ("http-status_code", "http_status_code"),
        ("123abc", "key_123abc"),
        ("_private", "key_private"),
        ("__reserved", "__reserved"),
        ("ünïcode", "key_n_code"),
        ("...", ""),
        ("", ""),
    ],
)
def test_label_name(key, label):
    assert tr.label_name(key) == label


@pytest.mark.parametrize("unit, out", [("s", "seconds"), ("By/s", "bytes_per_second"), ("1", ""), ("{req}", ""), ("{req}/s", "per_second")])
def test_unit_name(unit, out):
    assert tr.unit_name(unit) == out


@pytest.mark.parametrize(
    "value, text",
    [
        ("x y", "x y"),
        (-42, "-42"),
        (1.5, "1.5"),
        (1e6, "1000000"),
        (2.0, "2"),
        (1e-5, "0.00001"),
        (1e-7, "1e-7"),
        (-2.5e-12, "-2.5e-12"),
        (1e21, "1e+21"),
        (123456789e12, "123456789000000000000"),
        (math.inf, "json: unsupported value: +Inf"),
        (True, "true"),
        (b"\x01\x02", "AQI="),
        (["a<b"], '["a\\u003cb"]'),
        ([1.0, True, 3, b"\x01"], '[1,true,3,"AQ=="]'),
        ({"b": "x", "a": None}, '{"a":null,"b":"x"}'),
        ([math.nan], ""),
        (None, ""),
    ],
)
def test_any_value_string(value, text):
    assert tr.any_value_string(any_value(value)) == text


# ------------------------------------------------------------------------------- kinds


def test_gauge_with_job_instance_and_target_info():
    b = tr.translate_metric(gauge("memory.usage", "By", [(7.0, {"state": "used"})], "Memory."), SVC)
    b.check()
    assert b.by_series() == {
        (("__name__", "memory_usage_bytes"), ("instance", "pod-1"), ("job", "shop/api"), ("state", "used")): [(T_MS, 7.0)],
        (("__name__", "target_info"), ("host_name", "h1"), ("instance", "pod-1"), ("job", "shop/api")): [(T_MS, 1.0)],
    }
    assert [(m.family, m.type, m.help, m.unit) for m in b.metadata] == [
        ("memory_usage_bytes", "gauge", "Memory.", "bytes"),
        ("target_info", "gauge", "Target metadata", ""),
    ]
    assert not b.exemplars and b.rejected == {}


@pytest.mark.parametrize(
    "res, job_instance, has_target_info",
    [
        (resource(service__name="api"), {"job": "api"}, False),  # nothing else: no target_info
        (resource(service__name="api", host__name="h"), {"job": "api"}, True),
        (resource(service__instance__id="i-1", k8s__pod__name="p"), {"instance": "i-1"}, True),
        (resource(host__name="h"), {}, False),  # neither job nor instance
        (b"", {}, False),
    ],
)
def test_job_instance_and_target_info_rules(res, job_instance, has_target_info):
    b = tr.translate_metric(gauge("g"), res)
    labels = dict(next(ls for ls in b.series if dict(ls)["__name__"] == "g"))
    assert {k: v for k, v in labels.items() if k in ("job", "instance")} == job_instance
    assert ("target_info" in series_names(b)) == has_target_info
    assert "target_info" not in series_names(tr.translate_metric(gauge("g"), res, target_info=False))


def test_counter_and_non_monotonic_sum():
    b = tr.translate_metric(sum_("http.requests", "1", [(3, {"code": 200}), (4.5, {"code": 500})]), SVC, target_info=False)
    assert only(b, "http_requests_total") == {
        (("code", "200"), ("instance", "pod-1"), ("job", "shop/api")): [3.0],
        (("code", "500"), ("instance", "pod-1"), ("job", "shop/api")): [4.5],
    }
    assert b.metadata[0].type == "counter"
    b = tr.translate_metric(sum_("queue.items", "{item}", monotonic=False), target_info=False)
    assert series_names(b) == {"queue_items"} and b.metadata[0].type == "gauge"


@pytest.mark.parametrize("temporality", [DELTA, pb.AGGREGATION_TEMPORALITY_UNSPECIFIED])
def test_delta_refused_per_metric(temporality):
    b = tr.translate_metric(sum_("x", points=[(1, {}), (2, {"a": "b"})], temporality=temporality), SVC)
    assert len(b) == 0 and b.series == [] and b.rejected == {"invalid_temporality": 2}
    assert "invalid temporality and type combination" in b.errors[0]


def test_attribute_sanitising_collisions_and_overrides():
    attrs = {"http.method": "GET", "http_method": "POST", "job": "mine", "__name__": "evil", "instance": "x"}
    b = tr.translate_metric(gauge("g", points=[(1.0, attrs)]), SVC, target_info=False)
    assert b.series == [
        (("__name__", "g"), ("http_method", "GET;POST"), ("instance", "pod-1"), ("job", "shop/api")),
    ]
    b = tr.translate_metric(gauge("g", points=[(1.0, {"n": 5, "f": 0.25, "ok": False, "empty": ""})]), target_info=False)
    assert b.series == [(("__name__", "g"), ("f", "0.25"), ("n", "5"), ("ok", "false"))]


def test_invalid_attribute_name_rejects_metric():
    b = tr.translate_metric(gauge("g", points=[(1.0, {"...": "x"})]))
    assert len(b) == 0 and b.rejected == {"invalid_label_name": 1}


def test_staleness_flag():
    b = tr.translate_metric(gauge("g", points=[(1.0, {}, 1)]))
    assert is_stale(b.values).tolist() == [True]


def histogram(name="http.server.duration", unit="ms", *, flags=0, with_sum=True, exemplars=(), temporality=CUM):
    m = pb.Metric(name=name, unit=unit)
    m.histogram.aggregation_temporality = temporality
    p = m.histogram.data_points.add(time_unix_nano=T, count=10, bucket_counts=[1, 2, 3, 4], explicit_bounds=[0.5, 1, 2.5], flags=flags)
    if with_sum:
        p.sum = 12.5
    kvs(p.attributes, {"route": "/a"})
    for value, trace in exemplars:
        e = p.exemplars.add(time_unix_nano=T - 1_000_000, as_double=value, trace_id=trace, span_id=b"\x01" * 8)
        kvs(e.filtered_attributes, {"user.id": "u1"})
    return m


def test_histogram_series():
    b = tr.translate_metric(histogram(), SVC, target_info=False)
    base = (("instance", "pod-1"), ("job", "shop/api"), ("route", "/a"))
    name = "http_server_duration_milliseconds"
    assert only(b, name + "_sum") == {base: [12.5]}
    assert only(b, name + "_count") == {base: [10.0]}
    buckets = {dict(k)["le"]: v for k, v in only(b, name + "_bucket").items()}
    assert buckets == {"0.5": [1.0], "1": [3.0], "2.5": [6.0], "+Inf": [10.0]}
    assert [(m.family, m.type, m.unit) for m in b.metadata] == [(name, "histogram", "milliseconds")]
    assert "_sum" not in "".join(series_names(tr.translate_metric(histogram(with_sum=False))))


def test_histogram_stale_and_no_suffix():
    b = tr.translate_metric(histogram(flags=1), add_suffixes=False)
    assert series_names(b) == {"http_server_duration_sum", "http_server_duration_count", "http_server_duration_bucket"}
    assert is_stale(b.values).all()


def test_histogram_exemplars_go_to_their_bucket():
    tid = bytes(range(16))
    b = tr.translate_metric(histogram(exemplars=[(0.7, tid), (2.5, tid), (99.0, b"")]), SVC, target_info=False)
    got = []
    for e in b.exemplars:
        d = dict(b.series[e.series])
        got.append((d["__name__"], d["le"], e.value, e.ts_ms, e.labels))
    common = (("span_id", "01" * 8), ("trace_id", tid.hex()), ("user_id", "u1"))
    assert got == [
        ("http_server_duration_milliseconds_bucket", "1", 0.7, T_MS - 1, common),
        ("http_server_duration_milliseconds_bucket", "2.5", 2.5, T_MS - 1, common),
        ("http_server_duration_milliseconds_bucket", "+Inf", 99.0, T_MS - 1, (("span_id", "01" * 8), ("user_id", "u1"))),
    ]


def test_exemplar_attributes_dropped_over_128_runes():
    m = sum_("c")
    e = m.sum.data_points[0].exemplars.add(time_unix_nano=T, as_int=3, trace_id=b"\xab" * 16)
    kvs(e.filtered_attributes, {"long": "x" * 100})
    b = tr.translate_metric(m)
    assert [(ex.labels, ex.value) for ex in b.exemplars] == [((("trace_id", "ab" * 16),), 3.0)]


def test_gauge_exemplars_not_kept():
    m = gauge("g")
    m.gauge.data_points[0].exemplars.add(time_unix_nano=T, as_double=1.0, trace_id=b"\x01" * 16)
    assert tr.translate_metric(m).exemplars == []


def test_summary():
    m = pb.Metric(name="rpc.latency", unit="s")
    p = m.summary.data_points.add(time_unix_nano=T, count=4, sum=2.0)
    for q, v in [(0.5, 0.4), (0.99, 0.9), (1.0, 1.1)]:
        p.quantile_values.add(quantile=q, value=v)
    b = tr.translate_metric(m, SVC, target_info=False)
    assert only(b, "rpc_latency_seconds_sum") and only(b, "rpc_latency_seconds_count")
    qs = {dict(k)["quantile"]: v for k, v in only(b, "rpc_latency_seconds").items()}
    assert qs == {"0.5": [0.4], "0.99": [0.9], "1": [1.1]}
    assert b.metadata[0].type == "summary"


def test_exponential_histogram_becomes_native_histogram():
    m = pb.Metric(name="eh", unit="s")
    m.exponential_histogram.aggregation_temporality = CUM
    for i in range(3):
        p = m.exponential_histogram.data_points.add(time_unix_nano=T + i * 1_000_000, count=2, sum=0.5, scale=2)
        p.positive.offset = -1
        p.positive.bucket_counts.extend([1, 1])
    m.exponential_histogram.data_points.add(time_unix_nano=T, count=1, scale=-5)  # below schema -4
    b = tr.translate_metric(m, SVC, target_info=False)
    assert len(b) == 0 and b.rejected == {"invalid_native_histogram": 1}
    assert {dict(b.series[i])["__name__"] for i, _, _ in b.histograms} == {"eh_seconds"} and len(b.histograms) == 3
    h = b.histograms[0][2]
    assert (h.schema, h.count, h.sum, h.pos) == (2, 2.0, 0.5, {0: 1.0, 1: 1.0})
    assert b.metadata[0].type == "histogram"


def test_empty_metric_dropped():
    b = tr.translate_metric(pb.Metric(name="nothing"), SVC)
    assert len(b) == 0 and "empty data points" in b.errors[0]


def test_scope_labels_only_when_promoted():
    scope = common_pb2.InstrumentationScope(name="my.lib", version="1.2")
    kvs(scope.attributes, {"tier": "x"})
    raw = scope.SerializeToString()
    assert tr.translate_metric(gauge("g"), b"", raw).series == [(("__name__", "g"),)]
    assert tr.translate_metric(gauge("g"), b"", raw, promote_scope=True).series == [
        (("__name__", "g"), ("otel_scope_name", "my.lib"), ("otel_scope_tier", "x"), ("otel_scope_version", "1.2")),
    ]


def test_bad_bytes_raise_bad_input():
    with pytest.raises(BadInput):
        tr.translate_metric(b"\xff\xff\xff")
    with pytest.raises(BadInput):
        tr.translate_metric(gauge("g"), b"\xff\xff\xff")
    with pytest.raises(BadInput):
        tr.translate_request(b"\xff\xff\xff")


# ---------------------------------------------------------------------- real OTel SDK


def test_sdk_export_request_translates_like_prometheus():
    from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource

    reader = InMemoryMetricReader()
    res = Resource.create({"service.name": "checkout", "service.instance.id": "c-1", "deployment.environment": "prod"})
    provider = MeterProvider(metric_readers=[reader], resource=res)
    meter = provider.get_meter("checkout.meter", "0.1")
    meter.create_counter("orders.placed", unit="{order}").add(3, {"payment.method": "card"})
    meter.create_up_down_counter("cart.items", unit="{item}").add(-2)
    meter.create_histogram("http.server.request.duration", unit="s").record(0.3, {"http.route": "/pay"})
    meter.create_gauge("cpu.utilization", unit="1").set(0.25)
    # one collection: some SDK versions report a synchronous gauge's value only once
    request = encode_metrics(reader.get_metrics_data())
    provider.shutdown()

    body = request.SerializeToString()
    whole = tr.translate_request(body)
    whole.check()
    per_metric = []
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                per_metric.append(tr.translate_metric(m.SerializeToString(), rm.resource.SerializeToString(), sm.scope.SerializeToString()))
    names = series_names(whole)
    assert names == {
        "orders_placed_total",
        "cart_items",
        "http_server_request_duration_seconds_bucket",
        "http_server_request_duration_seconds_sum",
        "http_server_request_duration_seconds_count",
        "cpu_utilization_ratio",
        "target_info",
    }
    assert set().union(*(series_names(b) for b in per_metric)) == names
    ident = {"job": "checkout", "instance": "c-1"}
    assert only(whole, "orders_placed_total") == {tuple(sorted({**ident, "payment_method": "card"}.items())): [3.0]}
    assert only(whole, "cart_items") == {tuple(sorted(ident.items())): [-2.0]}
    assert only(whole, "cpu_utilization_ratio") == {tuple(sorted(ident.items())): [0.25]}
    buckets = only(whole, "http_server_request_duration_seconds_bucket")
    inf = tuple(sorted({**ident, "http_route": "/pay", "le": "+Inf"}.items()))
    assert buckets[inf] == [1.0] and len(buckets) == 16  # the SDK's 15 default bounds + +Inf
    assert only(whole, "http_server_request_duration_seconds_sum") == {tuple(sorted({**ident, "http_route": "/pay"}.items())): [0.3]}
    (info_labels,) = only(whole, "target_info")
    info = dict(info_labels)
    assert info["deployment_environment"] == "prod" and info["job"] == "checkout" and info["instance"] == "c-1"
    assert info["telemetry_sdk_language"] == "python" and "service_name" not in info
    assert not whole.rejected
    assert {m.family: m.type for m in whole.metadata} == {
        "orders_placed_total": "counter",
        "cart_items": "gauge",
        "http_server_request_duration_seconds": "histogram",
        "cpu_utilization_ratio": "gauge",
        "target_info": "gauge",
    }
    assert all(not math.isnan(v) for v in whole.values.tolist())


def test_scope_labels_override_attributes_and_need_a_name():
    scope = common_pb2.InstrumentationScope(name="lib", version="")
    kvs(scope.attributes, {"1st": "a"})
    m = gauge("g", points=[(1.0, {"otel_scope_name": "mine", "k": "v"})])
    b = tr.translate_metric(m, b"", scope.SerializeToString(), promote_scope=True)
    assert b.series == [(("__name__", "g"), ("k", "v"), ("otel_scope_1st", "a"), ("otel_scope_name", "lib"))]
    unnamed = common_pb2.InstrumentationScope(version="9").SerializeToString()
    assert tr.translate_metric(gauge("g"), b"", unnamed, promote_scope=True).series == [(("__name__", "g"),)]


def test_histogram_exemplars_with_unsorted_bounds():
    m = pb.Metric(name="h")
    m.histogram.aggregation_temporality = CUM
    p = m.histogram.data_points.add(time_unix_nano=T, count=3, bucket_counts=[1, 1, 1], explicit_bounds=[5.0, 1.0])
    p.exemplars.add(time_unix_nano=T, as_double=0.5, span_id=b"\x02" * 8)
    p.exemplars.add(time_unix_nano=T, as_double=3.0, span_id=b"\x02" * 8)
    p.exemplars.add(time_unix_nano=T, as_double=math.nan, span_id=b"\x02" * 8)  # fits no bucket: dropped
    b = tr.translate_metric(m)
    assert [dict(b.series[e.series])["le"] for e in b.exemplars] == ["1", "5"]


def test_metric_refused_midway_leaves_nothing_behind():
    m = gauge("g", points=[(1.0, {"ok": "1"}), (2.0, {"...": "bad"})])
    b = tr.translate_metric(m, SVC)
    assert len(b) == 0 and b.series == [] and b.metadata == [] and b.rejected == {"invalid_label_name": 2}
    b = tr.translate_request(_request_of([gauge("first"), m]))
    assert series_names(b) == {"first"} and b.rejected == {"invalid_label_name": 2}


def _request_of(metrics, res=b""):
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

    req = metrics_service_pb2.ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.ParseFromString(res)
    rm.scope_metrics.add().metrics.extend(metrics)
    return req.SerializeToString()


def test_delta_checked_before_emptiness():
    m = pb.Metric(name="d")
    m.sum.aggregation_temporality = DELTA
    assert tr.translate_metric(m).rejected == {"invalid_temporality": 0}


# ---------------------------------------------------------------------------------- fuzz

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_arbitrary_metric_bytes_only_bad_input(data, add_suffixes):
    try:
        tr.translate_metric(data, SVC, add_suffixes=add_suffixes).check()
    except BadInput:
        pass


attr_dicts = st.dictionaries(st.text(max_size=6), st.one_of(st.text(max_size=4), st.integers(-5, 5), st.floats(), st.booleans()), max_size=3)


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(max_size=12),
    unit=st.sampled_from(["", "1", "s", "By/s", "{x}", "%", "m/ü"]),
    kind=st.sampled_from(["gauge", "sum", "histogram", "summary"]),
    attrs=attr_dicts,
    bounds=st.lists(st.floats(allow_nan=False), max_size=4),
    exemplar_value=st.floats(),
    flags=st.sampled_from([0, 1]),
)
def test_generated_metrics_translate_to_valid_batches(name, unit, kind, attrs, bounds, exemplar_value, flags):
    m = pb.Metric(name=name, unit=unit)
    if kind in ("gauge", "sum"):
        dps = m.gauge.data_points if kind == "gauge" else m.sum.data_points
        if kind == "sum":
            m.sum.aggregation_temporality, m.sum.is_monotonic = CUM, True
        number_points(dps, [(1.0, attrs, flags)])
        point = dps[0]
    elif kind == "histogram":
        m.histogram.aggregation_temporality = CUM
        point = m.histogram.data_points.add(time_unix_nano=T, count=5, explicit_bounds=bounds, bucket_counts=[1] * (len(bounds) + 1), flags=flags)
        kvs(point.attributes, attrs)
    else:
        point = m.summary.data_points.add(time_unix_nano=T, count=1, sum=1.0, flags=flags)
        point.quantile_values.add(quantile=0.5, value=1.0)
        kvs(point.attributes, attrs)
    if kind != "summary":
        point.exemplars.add(time_unix_nano=T, as_double=exemplar_value, trace_id=b"\x01" * 16)
    b = tr.translate_metric(m.SerializeToString(), SVC)
    b.check()
    if len(b):
        assert all(dict(ls).get("job") == "shop/api" for ls in b.series)
    else:
        assert b.rejected


def test_sdk_exponential_histogram_is_translated():
    from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource

    reader = InMemoryMetricReader()
    view = View(instrument_name="latency", aggregation=ExponentialBucketHistogramAggregation())
    provider = MeterProvider(metric_readers=[reader], views=[view], resource=Resource.create({"service.name": "s"}))
    h = provider.get_meter("m").create_histogram("latency", unit="ms")
    h.record(3.0, {"a": "1"})
    h.record(4.0, {"a": "2"})
    request = encode_metrics(reader.get_metrics_data())
    provider.shutdown()
    b = tr.translate_request(request.SerializeToString())
    assert series_names(b) == {"latency_milliseconds", "target_info"} and not b.rejected
    assert sorted(dict(b.series[i])["a"] for i, _, _ in b.histograms) == ["1", "2"]
    assert all(h.count == 1 and h.schema == 8 for _, _, h in b.histograms)  # the SDK's default scale is 20


def test_invalid_resource_attribute_skipped_in_target_info():
    res = resource(service__name="api", host__name="h")
    r = resource_pb2.Resource.FromString(res)
    r.attributes.add(key="...").value.string_value = "x"
    b = tr.translate_metric(gauge("g"), r.SerializeToString())
    assert (("__name__", "target_info"), ("host_name", "h"), ("job", "api")) in b.series

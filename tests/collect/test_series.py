"""One target's series across scrapes: target labels and honor_labels, metric relabeling, limits,
report series, scrape_series_added and staleness markers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kms.collect.config import load_jobs
from kms.collect.exposition import parse
from kms.collect.series import ScrapeError, SeriesCache
from kms.metrics.samples import is_stale

TARGET = (("instance", "h:1"), ("job", "node"))
REPORT = [("up", 1.0), ("scrape_duration_seconds", 0.01)]
TEXT_CTYPE = "text/plain; version=0.0.4"


def cache(**kw) -> SeriesCache:
    (j,) = load_jobs({}, [{"job_name": "node", **kw}])
    return SeriesCache(j, TARGET)


def scrape(c: SeriesCache, body: str, t: int, ctype: str = "text/plain"):
    out = c.append(parse(body.encode(), ctype), t, REPORT)
    out.batch.check()
    got = {}
    for ls, pts in out.batch.by_series().items():
        d = dict(ls)
        got[(d.pop("__name__"), tuple(sorted(d.items())))] = pts
    return out, got


def test_target_labels_exported_and_report_series():
    c = cache()
    out, got = scrape(c, 'a{x="1"} 5\nb{job="exp",instance="i"} 6\n', 1000)
    assert got[("a", (("instance", "h:1"), ("job", "node"), ("x", "1")))] == [(1000, 5.0)]
    assert got[("b", (("exported_instance", "i"), ("exported_job", "exp"), ("instance", "h:1"), ("job", "node")))] == [(1000, 6.0)]
    rep = {n: pts[0][1] for (n, lb), pts in got.items() if lb == TARGET}
    assert rep == {"up": 1.0, "scrape_duration_seconds": 0.01, "scrape_samples_scraped": 2,
                   "scrape_samples_post_metric_relabeling": 2, "scrape_series_added": 2}
    assert (out.scraped, out.post_relabel, out.added) == (2, 2, 2)


def test_honor_labels_keeps_exposed_values():
    _, got = scrape(cache(honor_labels=True), 'b{job="exp"} 6\n', 1000)
    assert ("b", (("instance", "h:1"), ("job", "exp"))) in got


def test_metric_relabel_drops_and_counts():
    c = cache(metric_relabel_configs=[{"source_labels": ["__name__"], "regex": "go_.*", "action": "drop"},
                                      {"action": "labeldrop", "regex": "noisy"}])
    out, got = scrape(c, 'go_x 1\nkeep{noisy="a"} 2\n', 1000)
    assert ("keep", TARGET) in got and not any(n == "go_x" for n, _ in got)
    assert (out.scraped, out.post_relabel) == (2, 1)


def test_staleness_for_series_that_disappear_and_failed_scrapes():
    c = cache()
    scrape(c, "a 1\nb 2\n", 1000)
    out, got = scrape(c, "a 1\n", 2000)
    b = got[("b", TARGET)]
    assert len(b) == 1 and b[0][0] == 2000 and math.isnan(b[0][1])
    assert is_stale(out.batch.values[out.batch.series_idx == out.batch.series.index(
        next(ls for ls in out.batch.series if dict(ls)["__name__"] == "b"))]).all()
    assert out.added == 0
    failed = c.failed(3000, [("up", 0.0)])
    names = {dict(failed.series[i])["__name__"]: v for i, v in zip(failed.series_idx.tolist(), failed.values, strict=True)}
    assert names["up"] == 0 and is_stale(np.array([names["a"]]))[0]
    assert "b" not in names  # already marked stale once
    gone = c.stale_all(4000)
    assert [dict(ls)["__name__"] for ls in gone.series] == ["up"] and is_stale(gone.values).all()


def test_series_with_timestamps_honored_and_not_staled():
    c = cache()
    _, got = scrape(c, "a 1 500\nb 2\n", 1000)
    assert got[("a", TARGET)] == [(500, 1.0)] and got[("b", TARGET)] == [(1000, 2.0)]
    _, got = scrape(c, "b 3\n", 2000)
    assert ("a", TARGET) not in got  # Prometheus does not mark series with own timestamps stale
    _, got = scrape(cache(honor_timestamps=False), "a 1 500\n", 1000)
    assert got[("a", TARGET)] == [(1000, 1.0)]


@pytest.mark.parametrize("kw, body, words", [
    ({"sample_limit": 2}, "a 1\nb 1\nc 1\n", "sample limit exceeded"),
    ({"label_limit": 3}, 'a{x="1",y="2"} 1\n', "label_limit exceeded"),
    ({"label_name_length_limit": 3}, 'a{long="1"} 1\n', "label_name_length_limit exceeded"),
    ({"label_value_length_limit": 3}, 'a{x="long"} 1\n', "label_value_length_limit exceeded"),
    ({}, 'a{x="1",x="2"} 1\n', "duplicate label names"),
])
def test_limits_fail_the_scrape(kw, body, words):
    with pytest.raises(ScrapeError, match=words):
        cache(**kw).append(parse(body.encode()), 1000, REPORT)


def test_sample_limit_counts_after_metric_relabeling():
    c = cache(sample_limit=1, metric_relabel_configs=[{"source_labels": ["__name__"], "regex": "b", "action": "drop"}])
    out, _ = scrape(c, "a 1\nb 1\n", 1000)
    assert out.post_relabel == 1


def test_exemplars_attach_to_their_series():
    body = 'a_total 1 # {trace_id="t1"} 0.5 1.5\nb_total 2\n# EOF\n'
    out, _ = scrape(cache(), body, 2000, "application/openmetrics-text")
    (ex,) = out.batch.exemplars
    assert dict(out.batch.series[ex.series])["__name__"] == "a_total" and ex.ts_ms == 1500
    assert ex.labels == (("trace_id", "t1"),)


def _view(out) -> tuple:
    out.batch.check()
    pts = {ls: [(t, np.float64(v).tobytes()) for t, v in p] for ls, p in out.batch.by_series().items()}
    return pts, out.scraped, out.post_relabel, out.added, out.metadata, sorted(out.batch.metadata, key=str)


def test_unchanged_layout_reuses_the_last_scrape_and_matches_the_full_path():
    """Bodies with the same lines but other values take the reuse path; every batch equals what
    the full parse gives a second cache fed the same bodies (staleness, drops, failures included)."""
    drop = [{"source_labels": ["__name__"], "regex": "gone_.*", "action": "drop"}]
    fast, full = cache(metric_relabel_configs=drop), cache(metric_relabel_configs=drop)
    head = '# HELP a Help.\n# TYPE a counter\na{x="1"} '
    bodies = [head + "1\nb 2\ngone_x 3\n", head + "2\nb 3\ngone_x 4\n", head + "3\nb NaN\ngone_x 5\n",
              head + "4\n", head + "5\n", head + "6\nc 1\n", "x 1 1000\n", head + "7\nc 2\n", head + "8\nc 3\n",
              head + "9\nc 4\nc 5\n", head + "10\nb 7\n"]  # a line twice; b back after four scrapes
    reused = 0
    for i, body in enumerate(bodies):
        t = 1000 * (i + 1)
        rep = fast._repeat
        got = fast.scrape(body.encode(), TEXT_CTYPE, t, REPORT)
        reused += rep is not None and fast._repeat is rep
        want = full.append(parse(body.encode()), t, REPORT)
        assert _view(got) == _view(want), i
        if i == 3:  # a failed scrape between two bodies of one layout: all its series go stale
            assert _view_failed(fast.failed(t + 500, REPORT)) == _view_failed(full.failed(t + 500, REPORT))
    assert reused == 3  # bodies 1, 2 and 8; the others follow a new layout, staleness markers or timestamps


def _view_failed(batch) -> dict:
    return {ls: [(t, np.float64(v).tobytes()) for t, v in p] for ls, p in batch.by_series().items()}

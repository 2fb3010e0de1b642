"""A vectorised ``| logfmt`` for ``sum by (labels) (count_over_time(... | logfmt [r]))``.

When a summed additive range aggregation needs only a few labels and its pipeline is line
filters plus a plain ``| logfmt`` (like Loki's parser hints, which extract only the labels a
query uses), each wanted key is pulled out with one Arrow regex over the whole batch. In a line
holding a ``"`` a quoted value could hide ``key=`` text, so there the regex runs only on the
text before the first ``"`` (whitespace-separated tokens, which the per-line parser reads the
same way); a line whose key is not found there and that holds the key's text after it is parsed
in Python, so the answer is the one the per-line parser gives (access logs with a quoted request
and logfmt lines with a quoted ``msg``: 1M lines of bench_logs_query.py, 58 s -> 10.5 s on a
loaded machine). A stream or metadata label of the same name wins
over the parsed one, as with the per-line path (the parsed one would be ``<name>_extracted``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kms.metrics.storage.labels import parse_labels_text

from .ast import Grouping, Parser, RangeAggregation
from .parsers import logfmt_pairs, sanitize
from .patterns import re2_escape
from .scan import Batch, split_stages

__all__ = ["logfmt_hint", "hinted_batch"]


def logfmt_hint(e: RangeAggregation, group: Grouping | None) -> tuple[tuple[str, ...], bool] | None:
    """(labels to extract, keep_empty) when the vectorised path applies to ``e`` grouped by ``group``."""
    if group is None or group.without or not group.labels or e.range.unwrap is not None:
        return None
    _, rest = split_stages(e.range.selector)
    if len(rest) != 1 or not isinstance(rest[0], Parser):
        return None
    p = rest[0]
    if p.kind != "logfmt" or p.strict or p.params:
        return None
    return group.labels, p.keep_empty


def _key_text(label: str) -> str:
    # any key that sanitizes to ``label``: "_" stands for itself or any other non-name rune
    return "".join("[^a-zA-Z0-9\\s=\"]" if c == "_" else re2_escape(c) for c in label)


def _key_regex(label: str, keep_empty: bool) -> str:
    # The first occurrence wins; without --keep-empty empty values do not count.
    key = _key_text(label)
    if keep_empty:
        return f"(?:^|\\s)(?:{key})(?:=(?P<v>\\S*))?(?:\\s|$)"
    return f"(?:^|\\s)(?:{key})=(?P<v>\\S+)(?:\\s|$)"


def _python_value(line: str, label: str, keep_empty: bool) -> str | None:
    for key, value in logfmt_pairs(line, False):
        if sanitize(key) == label and (value or keep_empty):
            return value
    return None


def _quoted_values(vals: np.ndarray, rows: np.ndarray, lines: pa.Array, prefix: pa.Array, label: str,
                   keep_empty: bool) -> None:
    """Sets ``vals[rows]``, the values of ``label`` in the quoted ``lines`` (``prefix``: their
    text before the first quote + NUL)."""
    ext = pc.extract_regex(prefix, _key_regex(label, keep_empty))
    pre = pc.fill_null(ext.field("v"), "")
    ok = pc.and_(pc.is_valid(ext), pc.invert(pc.match_substring(pre, "\x00"))).to_numpy(zero_copy_only=False)
    pre_vals = pre.to_numpy(zero_copy_only=False)
    maybe = pc.match_substring_regex(lines, _key_text(label)).to_numpy(zero_copy_only=False)
    vals[rows] = np.where(ok, pre_vals, "")
    slow = np.flatnonzero(~ok & maybe)  # the key may sit after the quote: the per-line parser decides
    if len(slow):
        for i, line in zip(slow.tolist(), lines.take(pa.array(slow)).to_pylist(), strict=True):
            vals[rows[i]] = _python_value(line, label, keep_empty) or ""


def hinted_batch(b: Batch, labels: tuple[str, ...], keep_empty: bool) -> tuple[np.ndarray, list[dict[str, str]]]:
    """(series code per row, label dict per code) with only ``labels`` kept."""
    n = len(b.line)
    streams = [parse_labels_text(t) for t in b.streams]
    meta = pc.dictionary_encode(pc.fill_null(b.metadata, "{}"))
    metas = [parse_labels_text(t) for t in meta.dictionary.to_pylist()]
    meta_codes = meta.indices.to_numpy(zero_copy_only=False)
    quoted = np.flatnonzero(pc.match_substring(b.line, '"').to_numpy(zero_copy_only=False))
    quoted_arr = b.line.take(pa.array(quoted)) if len(quoted) else None
    if quoted_arr is not None:
        # the text before the first quote, with NUL where the quote was: a value running into it
        # was not a token of its own
        prefix = pc.binary_join_element_wise(pc.replace_substring_regex(quoted_arr, '(?s)".*', ""), "\x00", "")
    codes = np.zeros(n, dtype=np.int64)
    values_by_label: list[list[str]] = []
    for label in labels:
        ext = pc.extract_regex(b.line, _key_regex(label, keep_empty))
        vals = pc.fill_null(ext.field("v"), "").to_numpy(zero_copy_only=False).astype(object)
        if quoted_arr is not None:
            _quoted_values(vals, quoted, quoted_arr, prefix, label, keep_empty)
        from_stream = np.array([s.get(label) for s in streams], dtype=object)[b.stream_codes]
        from_meta = np.array([m.get(label) for m in metas], dtype=object)[meta_codes]
        vals = np.where(from_stream != None, from_stream, np.where(from_meta != None, from_meta, vals))  # noqa: E711
        enc = pa.array(vals, type=pa.string()).dictionary_encode()
        codes = codes * (len(enc.dictionary) + 1) + enc.indices.to_numpy(zero_copy_only=False)
        values_by_label.append(enc.dictionary.to_pylist())
    uniq, inverse = np.unique(codes, return_inverse=True)
    out: list[dict[str, str]] = []
    for code in uniq.tolist():
        labels_of: dict[str, str] = {}
        for label, values in zip(reversed(labels), reversed(values_by_label), strict=True):
            code, idx = divmod(code, len(values) + 1)
            if values[idx]:
                labels_of[label] = values[idx]
        out.append(labels_of)
    return inverse.astype(np.int64), out

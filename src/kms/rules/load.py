"""Rule files in Prometheus's format, checked at load.

A file is ``groups: [{name, interval?, limit?, source?, rules: [...]}]``; a rule has ``record`` or
``alert``, ``expr``, and for alerts ``for``, ``keep_firing_for``, ``labels``, ``annotations``.
Unknown keys are refused as Prometheus refuses them.

Query language (Loki's ruler runs LogQL metric queries in the same format): a rule whose
``expr`` is not PromQL but is a LogQL metric query is a LogQL rule. A group key
``source: logql`` (a kms extension; ``source: promql`` is the default) makes every rule of the
group LogQL, for expressions both languages accept (``sum(count_over_time({app="x"}[1m]))``).

Every problem is reported at once with file, group, rule index and name, and the parser's
message: ``rules.yml: group "api", rule 2 ("HighErrors"): expr: parse error: ...``.
"""

from __future__ import annotations

import dataclasses
import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kms.config import parse_duration
from kms.errors import BadInput
from kms.rules.template import Template, TemplateError

__all__ = ["RuleSpec", "GroupSpec", "RuleFileError", "load_files", "parse_groups", "expand_paths", "group_to_dict"]

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_GROUP_KEYS = {"name", "interval", "limit", "rules", "source", "query_offset", "labels"}
_RULE_KEYS = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


class RuleFileError(BadInput):
    reason = "bad_rules"

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True)
class RuleSpec:
    kind: str  # "recording" | "alerting"
    name: str  # the record's metric name or the alert's name
    expr: str
    lang: str = "promql"  # "promql" | "logql"
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    raw: dict = field(default_factory=dict, compare=False)  # the rule as written (ruler API output)


@dataclass(frozen=True)
class GroupSpec:
    name: str
    file: str  # the file path, or the ruler API namespace
    interval_s: float
    rules: tuple[RuleSpec, ...]
    limit: int = 0
    source: str = "promql"
    query_offset_s: float = 0.0  # queries run this far before the evaluation time (late data)
    raw: dict = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.file, self.name)


def expand_paths(paths: list[str]) -> list[Path]:
    """Each path as a file, a directory (its *.yml/*.yaml) or a glob; sorted, duplicates dropped."""
    out: list[Path] = []
    for p in paths:
        hits = sorted(glob.glob(p)) if any(c in p for c in "*?[") else [p]
        for h in hits:
            path = Path(h)
            if path.is_dir():
                out += sorted(q for q in path.iterdir() if q.suffix in (".yml", ".yaml"))
            else:
                out.append(path)
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def load_files(paths: list[str], default_interval_s: float) -> list[GroupSpec]:
    """All groups of the rule files; raises RuleFileError naming every problem found."""
    groups: list[GroupSpec] = []
    errors: list[str] = []
    for path in expand_paths(paths):
        try:
            text = path.read_text()
        except OSError as e:
            errors.append(f"{path}: cannot read: {e.strerror or e}")
            continue
        try:
            groups += parse_groups(text, str(path), default_interval_s)
        except RuleFileError as e:
            errors += e.errors
    if errors:
        raise RuleFileError(errors)
    return groups


def parse_groups(text: str, file: str, default_interval_s: float, *, single: bool = False,
                 default_source: str = "promql") -> list[GroupSpec]:
    """Parse a rule file's text (``single``: the text is one group, as the ruler API's POST body)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RuleFileError([f"{file}: invalid YAML: {e}"]) from None
    if single:
        doc = {"groups": [doc]}
    if doc is None:
        return []
    if not isinstance(doc, dict) or set(doc) - {"groups"}:
        extra = sorted(set(doc) - {"groups"}) if isinstance(doc, dict) else []
        raise RuleFileError([f"{file}: expected a mapping with 'groups'" + (f" (unknown keys: {extra})" if extra else "")])
    raw_groups = doc.get("groups") or []
    if not isinstance(raw_groups, list):
        raise RuleFileError([f"{file}: 'groups' must be a list"])
    errors: list[str] = []
    out: list[GroupSpec] = []
    seen: set[str] = set()
    for gi, g in enumerate(raw_groups):
        where = f"{file}: group {gi + 1}"
        if not isinstance(g, dict):
            errors.append(f"{where}: expected a mapping")
            continue
        name = g.get("name")
        if not isinstance(name, str) or not name:
            errors.append(f"{where}: group name must not be empty")
            continue
        where = f'{file}: group "{name}"'
        if name in seen:
            errors.append(f"{where}: repeated in the same file")
        seen.add(name)
        for k in sorted(set(g) - _GROUP_KEYS):
            errors.append(f"{where}: field {k} not found in a rule group")
        source = str(g.get("source", default_source)).lower()
        if source not in ("promql", "logql"):
            errors.append(f"{where}: source must be promql or logql, not {source!r}")
        try:
            interval = parse_duration(str(g["interval"])) if g.get("interval") is not None else default_interval_s
        except BadInput as e:
            errors.append(f"{where}: interval: {e.message}")
            interval = default_interval_s
        if interval <= 0:
            errors.append(f"{where}: interval must be positive")
        limit = g.get("limit") or 0
        if not isinstance(limit, int) or limit < 0:
            errors.append(f"{where}: limit must be a non-negative integer")
            limit = 0
        try:
            offset = parse_duration(str(g["query_offset"])) if g.get("query_offset") is not None else 0.0
        except BadInput as e:
            errors.append(f"{where}: query_offset: {e.message}")
            offset = 0.0
        glabels = g.get("labels") or {}
        if not isinstance(glabels, dict) or any(not _LABEL_NAME.match(str(k)) for k in glabels):
            errors.append(f"{where}: labels must map valid label names to values")
            glabels = {}
        rules = g.get("rules") or []
        if not isinstance(rules, list):
            errors.append(f"{where}: 'rules' must be a list")
            rules = []
        specs = []
        for ri, r in enumerate(rules):
            spec = _parse_rule(r, f"{where}, rule {ri + 1}", source, errors)
            if spec is not None:
                if glabels:  # group labels apply to every rule; the rule's own win
                    spec = dataclasses.replace(spec, labels={**{str(k): str(v) for k, v in glabels.items()},
                                                             **spec.labels})
                specs.append(spec)
        out.append(GroupSpec(name, file, interval, tuple(specs), limit, source, offset, raw=dict(g)))
    if errors:
        raise RuleFileError(errors)
    return out


def _parse_rule(r: Any, where: str, source: str, errors: list[str]) -> RuleSpec | None:
    if not isinstance(r, dict):
        errors.append(f"{where}: expected a mapping")
        return None
    record, alert = r.get("record"), r.get("alert")
    name = record or alert or ""
    if name:
        where += f' ("{name}")'
    problems: list[str] = [f"field {k} not found in a rule" for k in sorted(set(r) - _RULE_KEYS)]
    if bool(record) == bool(alert):
        problems.append("one of 'record' or 'alert' must be set" if not (record or alert)
                        else "only one of 'record' and 'alert' may be set")
    if record and not _METRIC_NAME.match(str(record)):
        problems.append(f"invalid recording rule name: {record}")
    if record:
        for k in ("for", "keep_firing_for", "annotations"):
            if k in r:
                problems.append(f"invalid field '{k}' in recording rule")
    expr = r.get("expr")
    lang = source
    if not isinstance(expr, str) or not expr.strip():
        problems.append("field 'expr' must be set in rule")
    else:
        lang, err = check_expr(str(expr), source)
        if err:
            problems.append(f"expr: {err}")
    durations = {}
    for k in ("for", "keep_firing_for"):
        try:
            durations[k] = parse_duration(str(r[k])) if r.get(k) is not None else 0.0
        except BadInput as e:
            problems.append(f"{k}: {e.message}")
            durations[k] = 0.0
    maps = {}
    for k in ("labels", "annotations"):
        m = r.get(k) or {}
        if not isinstance(m, dict):
            problems.append(f"{k} must be a mapping")
            m = {}
        m = {str(a): "" if b is None else str(b) for a, b in m.items()}
        for lk, lv in m.items():
            if k == "labels" and (not _LABEL_NAME.match(lk) or lk == "__name__"):
                problems.append(f"invalid label name: {lk}")
            try:
                Template(lv)
            except TemplateError as e:
                problems.append(f"{k[:-1]} {lk!r}: template: {e}")
        maps[k] = m
    if problems:
        errors += [f"{where}: {p}" for p in problems]
        return None
    return RuleSpec("recording" if record else "alerting", str(name), str(expr), lang, durations["for"],
                    durations["keep_firing_for"], maps["labels"], maps["annotations"], raw=dict(r))


def check_expr(expr: str, source: str) -> tuple[str, str]:
    """(language, error or ""): PromQL unless the group says LogQL or only LogQL parses it."""
    from kms.logs.logql import LogQLError, is_metric_query
    from kms.logs.logql import parse as logql_parse
    from kms.metrics.promql.engine import parse as promql_parse
    from kms.metrics.promql.values import PromQLError

    def logql() -> str:
        try:
            if not is_metric_query(logql_parse(expr)):
                return "LogQL rules must be metric queries, not log queries"
        except LogQLError as e:
            return str(e)
        return ""

    if source == "logql":
        return "logql", logql()
    try:
        promql_parse(expr)
        return "promql", ""
    except PromQLError as e:
        if "|" in expr or "{" in expr:
            lerr = logql()
            if not lerr:
                return "logql", ""
            if lerr.startswith("LogQL rules"):  # LogQL, but a log query
                return "logql", lerr
        return "promql", e.message


def group_to_dict(g: GroupSpec) -> dict:
    """The group as rule-file YAML data (the ruler API's answer)."""
    out: dict[str, Any] = {"name": g.name}
    for k in ("interval", "limit", "source", "query_offset", "labels"):
        if g.raw.get(k) is not None:
            out[k] = g.raw[k]
    out["rules"] = [dict(r.raw) for r in g.rules]
    return out

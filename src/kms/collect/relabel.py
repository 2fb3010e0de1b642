"""Prometheus relabeling (``relabel_configs``, ``metric_relabel_configs``), every action.

Semantics follow Prometheus's ``model/relabel``: the values of ``source_labels`` are joined with
``separator`` (default ``;``) and matched against ``regex`` anchored at both ends (default
``(.*)``); ``replacement`` (default ``$1``) and ``target_label`` expand ``$1``, ``${1}``,
``$name``, ``${name}`` and ``$$`` like Go's ``Regexp.Expand`` (``$1x`` is the group named ``1x``,
hence empty). A label set is a ``dict``; an empty value means "no such label" and is removed.
:func:`relabel` returns None when a ``keep``/``drop``-like rule drops the set.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["ACTIONS", "RelabelError", "Rule", "parse_rules", "relabel"]

ACTIONS = ("replace", "keep", "drop", "keepequal", "dropequal", "hashmod", "labelmap", "labeldrop",
           "labelkeep", "lowercase", "uppercase")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_EXPAND = re.compile(r"\$(?:\$|\{([a-zA-Z0-9_]+)\}|([a-zA-Z0-9_]+))")
_KEYS = {"source_labels", "separator", "regex", "modulus", "target_label", "replacement", "action"}


class RelabelError(ValueError):
    """A rule that Prometheus would refuse at config load; the message names the key."""


@dataclass(frozen=True)
class Rule:
    action: str = "replace"
    source_labels: tuple[str, ...] = ()
    separator: str = ";"
    regex: re.Pattern = re.compile(r"(?s:.*)\Z")
    regex_text: str = "(.*)"
    modulus: int = 0
    target_label: str = ""
    replacement: str = "$1"


def _compile(text: str) -> re.Pattern:
    # Go's RE2 syntax and Python's agree on what relabel rules use; (?P<n>...) works in both.
    try:
        return re.compile(f"(?:{text})\\Z", re.S)
    except re.error as e:
        raise RelabelError(f"invalid regex {text!r}: {e}") from None


def parse_rules(items: list | None, where: str) -> list[Rule]:
    """Rules of a ``relabel_configs`` list; :class:`RelabelError` names ``where`` and the key."""
    rules = []
    for n, item in enumerate(items or []):
        at = f"{where}[{n}]"
        if not isinstance(item, dict):
            raise RelabelError(f"{at}: expected a mapping")
        unknown = set(item) - _KEYS
        if unknown:
            raise RelabelError(f"{at}: unknown key {sorted(unknown)[0]!r}")
        action = str(item.get("action", "replace")).lower()
        if action not in ACTIONS:
            raise RelabelError(f"{at}.action: unknown relabel action {action!r} (one of {', '.join(ACTIONS)})")
        src = item.get("source_labels") or []
        if isinstance(src, str):
            src = [src]
        regex_text = str(item.get("regex", "(.*)"))
        try:
            regex = _compile(regex_text)
        except RelabelError as e:
            raise RelabelError(f"{at}.regex: {e}") from None
        target = str(item.get("target_label", "") or "")
        replacement = str(item.get("replacement", "$1"))
        try:
            modulus = int(item.get("modulus", 0) or 0)
        except (TypeError, ValueError):
            raise RelabelError(f"{at}.modulus: not a number") from None
        rule = Rule(action, tuple(str(s) for s in src), str(item.get("separator", ";")), regex, regex_text,
                    modulus, target, replacement)
        _validate(rule, at)
        rules.append(rule)
    return rules


def _validate(r: Rule, at: str) -> None:
    needs_target = ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
    if r.action in needs_target and not r.target_label:
        raise RelabelError(f"{at}.target_label: relabel configuration for {r.action} action requires 'target_label' value")
    if r.action in ("lowercase", "uppercase", "hashmod", "keepequal", "dropequal") and not _LABEL_NAME.match(r.target_label):
        raise RelabelError(f"{at}.target_label: {r.target_label!r} is invalid target_label for {r.action} action")
    if r.action == "replace" and "$" not in r.target_label and not _LABEL_NAME.match(r.target_label):
        raise RelabelError(f"{at}.target_label: {r.target_label!r} is invalid target_label for replace action")
    if r.action == "hashmod" and r.modulus <= 0:
        raise RelabelError(f"{at}.modulus: relabel configuration for hashmod requires non-zero modulus")
    if r.action in ("keepequal", "dropequal") and (r.regex_text != "(.*)" or r.replacement != "$1"
                                                   or r.separator != ";" or r.modulus):
        raise RelabelError(f"{at}: {r.action} action requires only 'source_labels' and 'target_label', "
                           "and no other fields")
    if r.action in ("labeldrop", "labelkeep") and (r.source_labels or r.target_label or r.replacement != "$1"):
        raise RelabelError(f"{at}: {r.action} action requires only 'regex', and no other fields")
    if r.action == "labelmap" and "$" not in r.replacement and not _LABEL_NAME.match(r.replacement):
        raise RelabelError(f"{at}.replacement: {r.replacement!r} is invalid replacement for labelmap action")


def expand(template: str, m: re.Match) -> str:
    """Go's ``Regexp.Expand``: ``$1``/``${1}``/``$name``/``${name}``; unknown groups are empty."""
    if "$" not in template:
        return template

    def one(x: re.Match) -> str:
        name = x.group(1) or x.group(2)
        if name is None:
            return "$"
        try:
            g = m.group(int(name)) if name.isdigit() else m.group(name)
        except IndexError:
            return ""
        return g or ""

    return _EXPAND.sub(one, template)


def _hashmod(value: str, modulus: int) -> int:
    # Prometheus: the md5 digest's last 8 bytes as a big-endian integer, modulo ``modulus``
    return int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % modulus


def relabel(labels: dict[str, str], rules: list[Rule]) -> dict[str, str] | None:
    """Apply ``rules`` in order to a copy of ``labels``; None if the set is dropped."""
    lb = dict(labels)
    for r in rules:
        val = r.separator.join(lb.get(s, "") for s in r.source_labels)
        a = r.action
        if a == "drop":
            if r.regex.match(val):
                return None
        elif a == "keep":
            if not r.regex.match(val):
                return None
        elif a == "dropequal":
            if lb.get(r.target_label, "") == val:
                return None
        elif a == "keepequal":
            if lb.get(r.target_label, "") != val:
                return None
        elif a == "replace":
            m = r.regex.match(val)
            if m is None:
                continue
            target = expand(r.target_label, m)
            if not _LABEL_NAME.match(target):
                continue
            value = expand(r.replacement, m)
            if value:
                lb[target] = value
            else:
                lb.pop(target, None)
        elif a == "lowercase":
            _set(lb, r.target_label, val.lower())
        elif a == "uppercase":
            _set(lb, r.target_label, val.upper())
        elif a == "hashmod":
            lb[r.target_label] = str(_hashmod(val, r.modulus))
        elif a == "labelmap":
            for name, value in list(lb.items()):
                m = r.regex.match(name)
                if m is not None:
                    new = expand(r.replacement, m)
                    if _LABEL_NAME.match(new):
                        lb[new] = value
        elif a == "labeldrop":
            for name in [n for n in lb if r.regex.match(n)]:
                del lb[name]
        elif a == "labelkeep":
            for name in [n for n in lb if not r.regex.match(n)]:
                del lb[name]
        else:
            raise RuntimeError(f"BUG: unknown relabel action {a!r}")
    return lb


def _set(lb: dict[str, str], name: str, value: str) -> None:
    if value:
        lb[name] = value
    else:
        lb.pop(name, None)

"""Deterministic YAML and JSON for rendered files: keys in a fixed order, no folded lines, and the
same bytes for the same stack on every run."""

from __future__ import annotations

import json

import yaml

__all__ = ["dump_yaml", "dump_all", "dump_json"]


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:
        return True  # no &id001 anchors: every file reads on its own


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Multi-line strings (embedded configs, dashboards) as blocks, readable in review.
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: object) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=10_000, allow_unicode=True)


def dump_all(objects: list[dict]) -> str:
    return "".join(f"---\n{dump_yaml(o)}" for o in objects)


def dump_json(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

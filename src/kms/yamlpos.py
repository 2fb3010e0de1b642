"""Where each key of a YAML text is: dotted paths ("a.b[0].c") to 1-based lines, so errors about
configuration files (the stack file, collector configs) and lint findings point into the file."""

from __future__ import annotations

import yaml

__all__ = ["positions"]


def positions(text: str) -> list[dict[str, int]]:
    """Per YAML document: dotted key path -> 1-based line ("a.b[0].c")."""
    out: list[dict[str, int]] = []

    def walk(node: yaml.Node, path: str, acc: dict[str, int]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                p = f"{path}.{k.value}" if path else str(k.value)
                acc[p] = k.start_mark.line + 1
                walk(v, p, acc)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                acc[f"{path}[{i}]"] = v.start_mark.line + 1
                walk(v, f"{path}[{i}]", acc)

    try:
        for node in yaml.compose_all(text):
            acc: dict[str, int] = {}
            if node is not None:
                walk(node, "", acc)
            out.append(acc)
    except yaml.YAMLError:
        pass
    return out

"""Findings and the document they point into: file, line, the problem and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kms.deploy.yamlpos import positions

__all__ = ["Finding", "Doc", "get", "positions"]

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int  # 0 when unknown
    severity: str  # error | warning
    code: str  # stable id, e.g. tempo-send-exemplars
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}[{self.code}]: {self.message}\n    fix: {self.fix}"


@dataclass
class Doc:
    """One parsed document; ``prefix`` is where ``data`` sits inside the file (umbrella values)."""

    file: str
    data: Any
    lines: dict[str, int] = field(default_factory=dict)
    prefix: str = ""
    findings: list[Finding] = field(default_factory=list)

    def sub(self, key: str) -> Doc:
        """The document under ``key``, reporting into the same list with the right paths."""
        return Doc(self.file, self.data.get(key) or {}, self.lines, self._path(key), self.findings)

    def full_path(self, path: str) -> str:
        """``path`` from the top of the file (as findings name it)."""
        return self._path(path)

    def _path(self, path: str) -> str:
        return f"{self.prefix}.{path}" if self.prefix and path else (self.prefix or path)

    def line(self, path: str) -> int:
        p = self._path(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p.rsplit(".", 1)[0] if "." in p else ""
        # A missing top-level key: point at the document's first key.
        return min(self.lines.values(), default=0)

    def error(self, code: str, path: str, message: str, fix: str) -> None:
        self.findings.append(Finding(self.file, self.line(path), ERROR, code, f"{self._path(path)}: {message}", fix))

    def warn(self, code: str, path: str, message: str, fix: str) -> None:
        self.findings.append(Finding(self.file, self.line(path), WARNING, code, f"{self._path(path)}: {message}", fix))


def get(data: Any, path: str, default: Any = None) -> Any:
    """``get(d, "a.b.c")`` through nested dicts; ``default`` when any part is missing."""
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return default
        data = data[part]
    return data

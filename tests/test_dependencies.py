"""Every third-party module the stack imports is a declared dependency: ``pip install .`` alone
must give a working ``kms`` (the test extra installs more, so a missing runtime dependency would
otherwise go unnoticed)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "kms"
# Modules that run only with an extra installed: the test helpers and the demo's services.
EXTRA_ONLY = {"testing": "test", "demo/services.py": "demo"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(group: str | None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return {_norm(re.split(r"[\s\[<>=~!;]", r, maxsplit=1)[0]) for r in reqs}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out - set(sys.stdlib_module_names) - {"kms", "__future__"}


def test_every_imported_distribution_is_declared():
    dists = packages_distributions()
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        extra = next((g for prefix, g in EXTRA_ONLY.items() if rel.startswith(prefix)), None)
        allowed = _declared(None) | (_declared(extra) if extra else set())
        if extra == "test":
            allowed |= _declared("demo")  # the test extra includes the demo extra
        for module in sorted(_imports(path)):
            names = {_norm(d) for d in dists.get(module, [module])}
            # protobuf's google.*, opentelemetry.* namespaces: any providing distribution declared
            if not names & allowed:
                missing.append(f"{rel} imports {module} ({', '.join(sorted(names))})")
    assert not missing, "undeclared dependencies:\n" + "\n".join(missing)

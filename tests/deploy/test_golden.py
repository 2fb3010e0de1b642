"""Golden files of rendered output, one tree per profile under tests/deploy/golden/, reviewed in
diffs. Regenerate after an intended change with:

    KMS_UPDATE_GOLDEN=1 /work/venv/bin/python -m pytest -q tests/deploy/test_golden.py

Chart templates and dashboard JSON files are left out: the first are copies of charts/kms-stack
(test_render checks), the second are also in the dashboard ConfigMaps under manifests/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from deploy_stacks import PROFILES

GOLDEN = Path(__file__).parent / "golden"


def _files(root: Path) -> dict[str, str]:
    return {str(f.relative_to(root)): f.read_text() for f in sorted(root.rglob("*"))
            if f.is_file() and "templates" not in f.parts and "dashboards" not in f.parts}  # fmt: skip


@pytest.mark.parametrize("profile", PROFILES)
def test_golden(profile: str, rendered: dict[str, Path]) -> None:
    got, want_dir = _files(rendered[profile]), GOLDEN / profile
    if os.environ.get("KMS_UPDATE_GOLDEN"):
        shutil.rmtree(want_dir, ignore_errors=True)
        for name, text in got.items():
            (want_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (want_dir / name).write_text(text)
    want = _files(want_dir)
    assert sorted(got) == sorted(want), "files differ; see the docstring to regenerate"
    for name in got:
        assert got[name] == want[name], f"{profile}/{name} differs from the golden file"

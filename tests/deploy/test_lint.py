"""`kms lint` on a corpus: each broken file (one mistake, its first line `# expect: SEVERITY CODE`)
yields exactly that finding with a line and a fix; correct files and rendered stacks stay silent."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_stacks import PROFILES

from kms.cli import main
from kms.deploy.lint import lint_paths

CORPUS = Path(__file__).parent / "lint_corpus"
BAD = sorted((CORPUS / "bad").glob("*.yaml"))
GOOD = sorted((CORPUS / "good").glob("*.yaml"))


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_lint_catches_each_mistake(path: Path) -> None:
    _, _, severity, code = path.read_text().splitlines()[0].split()
    findings, problems = lint_paths([path])
    assert problems == []
    assert {(f.severity, f.code) for f in findings} == {(severity, code)}
    for f in findings:
        assert f.line > 2 and f.fix and f.file == str(path)  # past the header comment, with a fix
    assert main(["lint", str(path)]) == (1 if severity == "error" else 0)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_lint_is_silent_on_correct_files(path: Path) -> None:
    assert lint_paths([path]) == ([], [])


def test_corpus_covers_every_check() -> None:
    codes = {p.read_text().split()[3] for p in BAD}
    assert len(BAD) >= 40 and len(codes) >= 40


@pytest.mark.parametrize("profile", PROFILES)
def test_rendered_stacks_are_lint_clean(profile: str, rendered: dict[str, Path]) -> None:
    assert lint_paths([rendered[profile]]) == ([], [])
    assert main(["lint", str(rendered[profile])]) == 0


def test_registry_check_on_manifests(rendered: dict[str, Path]) -> None:
    findings, _ = lint_paths([rendered["small"] / "manifests"], registry="registry.example.com/mirror")
    assert {f.code for f in findings} == {"image-registry"}
    assert {Path(f.file).name for f in findings} == {"statefulset-kms.yaml", "daemonset-kms-agent.yaml"}


def test_unreadable_files_fail(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [unclosed\n")
    assert main(["lint", str(broken), str(tmp_path / "missing.yaml")]) == 1
    err = capsys.readouterr().err
    assert "not valid YAML" in err and "no such file" in err

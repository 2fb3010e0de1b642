"""Stacks for every profile, rendered once per session (rendering is pure and deterministic)."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_stacks import PROFILES, stack_for

from kms.deploy import build, render


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, Path]:
    """profile -> output directory of ``render``."""
    out = {}
    for profile in PROFILES:
        d = tmp_path_factory.mktemp(profile)
        render(stack_for(profile), d)
        out[profile] = d
    return out


@pytest.fixture(scope="session")
def parts() -> dict[str, list]:
    return {p: build(stack_for(p)) for p in PROFILES}

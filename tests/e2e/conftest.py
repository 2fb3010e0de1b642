from __future__ import annotations

import pytest

from kms.testing import KmsProcess


@pytest.fixture
def kms(tmp_path):
    """A running ``kms up`` subprocess with its own data dir; stopped (SIGTERM) afterwards."""
    proc = KmsProcess(tmp_path / "data").start()
    yield proc
    proc.kill()


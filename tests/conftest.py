"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest

from kms.testing import S3Server


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server process (moto's server mode) for the whole session."""
    server = S3Server().start()
    yield server
    server.stop()

"""Configuration precedence, validation, durations, tenancy and admission limits."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kms.cli import _UP_FLAGS, build_parser
from kms.config import all_paths, load_config, parse_duration
from kms.errors import BadInput, LimitExceeded
from kms.limits import MemoryLimiter, RateLimiter
from kms.tenancy import TenantResolver, Unauthorized


@pytest.mark.parametrize("text, seconds", [("0", 0), ("15s", 15), ("1h30m", 5400), ("250ms", 0.25), ("30d", 2592000),
                                           ("1.5h", 5400), ("2w", 1209600), (90, 90)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["abc", "5", "1x", "h", "1h-2m"])
def test_parse_duration_refuses(text):
    with pytest.raises(BadInput):
        parse_duration(text)


def test_precedence_flag_over_env_over_file(tmp_path):
    f = tmp_path / "kms.yaml"
    f.write_text("server: {port: 1111, grpc_port: 2222}\nstorage: {backend: s3, s3: {bucket: from-file, path_style: false}}\n")
    env = {"KMS_SERVER_PORT": "3333", "KMS_STORAGE_S3_BUCKET": "from-env"}
    cfg = load_config(f, {"server.port": 4444}, env)
    assert (cfg.server.port, cfg.server.grpc_port) == (4444, 2222)
    assert (cfg.storage.backend, cfg.storage.s3.bucket, cfg.storage.s3.path_style) == ("s3", "from-env", False)
    cfg = load_config(f, {}, env)
    assert cfg.server.port == 3333


@pytest.mark.parametrize("doc, words", [
    ("server: {prot: 1}", "unknown setting"),
    ("storage: {backend: ftp}", "not one of local, s3"),
    ("server: {port: 99999}", "not a port"),
    ("storage: {retention: forever}", "invalid duration"),
    ("server: {port: abc}", "invalid value"),
    ("- a list", "mapping"),
])
def test_bad_config_files(tmp_path, doc, words):
    f = tmp_path / "kms.yaml"
    f.write_text(doc)
    with pytest.raises(BadInput, match=words):
        load_config(f, {}, {})


def test_every_setting_has_a_flag_and_help():
    flagged = {path for _, path, _, _ in _UP_FLAGS}
    assert {p for p, _, _ in all_paths()} == flagged
    help_text = build_parser()._subparsers._group_actions[0].choices["up"].format_help()
    for flag, _, _, _ in _UP_FLAGS:
        assert flag in help_text


def test_cli_help_and_bad_config_exit_codes(tmp_path):
    out = subprocess.run([sys.executable, "-m", "kms.cli", "up", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--grpc-port" in out.stdout and "KMS_SERVER_PORT" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "kms.cli", "up", "--storage", "ftp", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "storage.backend" in bad.stderr


def test_tenants():
    r = TenantResolver("anonymous")
    assert [r(None), r("fake"), r("single-tenant"), r("team-a")] == ["anonymous", "anonymous", "anonymous", "team-a"]
    assert r.for_read("b|a|b") == ["a", "b"]
    for bad in ("a/b", "..", "x" * 151, "with space"):
        with pytest.raises(BadInput):
            r(bad)
    with pytest.raises(Unauthorized):
        TenantResolver(required=True)(None)


def test_rate_limiter_refuses_over_burst_with_retry_after():
    rl = RateLimiter(rate_bytes=1000, burst_bytes=2000)
    rl.take("a", 1500)
    with pytest.raises(LimitExceeded) as e:
        rl.take("a", 1500)
    assert e.value.retry_after_s >= 1 and "ingestion rate limit" in e.value.message
    rl.take("b", 1500)  # tenants have their own buckets
    RateLimiter(0, 0).take("a", 10**12)  # 0 = unlimited


def test_memory_limiter():
    MemoryLimiter(limit_bytes=1 << 50).check()
    with pytest.raises(LimitExceeded, match="memory limit") as e:
        MemoryLimiter(limit_bytes=1).check()
    assert e.value.retry_after_s and e.value.reason == "memory_limit"

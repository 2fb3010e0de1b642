"""Object stores over pyarrow.fs: a local directory or an S3-compatible bucket.

Keys are ``/``-separated and relative (see layout.py). Both implementations are thread-safe.
``put`` is atomic: a reader sees the whole object or none (local: tmp + fsync + rename + dir
fsync; S3: a PUT is atomic by itself). Failures raise ``Unavailable``; a missing key on
``get``/``open`` raises ``NotFound``; ``delete`` of a missing key is not an error.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from abc import ABC, abstractmethod
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from kms.errors import NotFound, Unavailable

__all__ = ["ObjectStore", "LocalObjectStore", "S3ObjectStore"]

_TMP_MARK = ".tmp-"


class ObjectStore(ABC):
    """Bytes by key. ``filesystem`` + ``path(key)`` let pyarrow read objects directly."""

    filesystem: pafs.FileSystem
    remote: bool = False  # reads cost a round trip each: coalesce them

    @abstractmethod
    def path(self, key: str) -> str:
        """The path of ``key`` inside ``self.filesystem``."""

    @abstractmethod
    def put(self, key: str, data: bytes | pa.Buffer) -> None:
        """Store ``data`` under ``key`` atomically, replacing any previous object."""

    def get(self, key: str) -> bytes:
        with self._errors(key):
            with self.filesystem.open_input_stream(self.path(key)) as f:
                return f.read()

    def open(self, key: str) -> pa.NativeFile:
        """A random-access file for ``key`` (e.g. for Parquet)."""
        with self._errors(key):
            return self.filesystem.open_input_file(self.path(key))

    def map(self, key: str) -> memoryview | None:
        """The whole object as a read-only view without reading it (a file mapped into memory),
        or None where objects are not files."""
        return None

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        root = self.path(base).rstrip("/")
        sel = pafs.FileSelector(root, recursive=True, allow_not_found=True)
        with self._errors(prefix):
            infos = self.filesystem.get_file_info(sel)
        cut = len(self.path(""))
        keys = []
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            key = info.path[cut:].lstrip("/")
            if key.startswith(prefix) and _TMP_MARK not in key.rsplit("/", 1)[-1]:
                keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        try:
            with self._errors(key):
                self.filesystem.delete_file(self.path(key))
        except NotFound:
            pass

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under the directory-like ``prefix`` (e.g. ``tenant/signal/block/``)."""
        try:
            with self._errors(prefix):
                self.filesystem.delete_dir(self.path(prefix.rstrip("/")))
        except NotFound:
            pass

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release the filesystem handle (required for S3 before interpreter exit)."""

    def describe(self) -> str:
        return type(self).__name__

    class _errors:  # noqa: N801 - a tiny context manager translating filesystem errors
        def __init__(self, key: str):
            self.key = key

        def __enter__(self):
            return self

        def __exit__(self, et, e, tb):
            if e is None or not isinstance(e, (OSError, pa.ArrowException)):
                return False
            if isinstance(e, FileNotFoundError) or "not found" in str(e).lower() or "NoSuchKey" in str(e):
                raise NotFound(f"object {self.key!r} not found") from e
            raise Unavailable(f"object store error on {self.key!r}: {e}", reason="objstore") from e


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root`` (created if missing)."""

    def __init__(self, root: Path | str):
        self.root = Path(root).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self.filesystem = pafs.LocalFileSystem()

    def path(self, key: str) -> str:
        return str(self.root / key) if key else str(self.root)

    def map(self, key: str) -> memoryview | None:
        # objects are written whole and renamed into place, never changed in place: a mapping of
        # one stays valid while it is held, even after the object is deleted
        with self._errors(key):
            return memoryview(pa.memory_map(self.path(key)).read_buffer())

    def put(self, key: str, data: bytes | pa.Buffer) -> None:
        target = self.root / key
        try:
            self._makedirs(target.parent)
            tmp = target.with_name(f".{target.name}{_TMP_MARK}{os.getpid()}-{threading.get_ident()}")
            with open(tmp, "wb") as f:
                f.write(memoryview(data))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except OSError as e:
            raise Unavailable(f"local object store: cannot write {key!r}: {e}", reason="objstore") from e

    def delete_prefix(self, prefix: str) -> None:
        super().delete_prefix(prefix)
        try:
            _fsync_dir((self.root / prefix.rstrip("/")).parent)
        except OSError:
            pass

    def _makedirs(self, d: Path) -> None:
        """Create ``d`` and make each new directory entry durable."""
        missing = []
        while not d.exists():
            missing.append(d)
            d = d.parent
        for m in reversed(missing):
            m.mkdir(exist_ok=True)
            _fsync_dir(m.parent)

    def describe(self) -> str:
        return f"local:{self.root}"


_live_s3: weakref.WeakSet[S3ObjectStore] = weakref.WeakSet()


class S3ObjectStore(ObjectStore):
    """Objects in an S3-compatible bucket (AWS, MinIO, moto), optionally under a key prefix.

    ``endpoint`` is ``host:port`` (or a URL; its scheme wins); empty means AWS. ``path_style``
    addressing is what MinIO and most S3-compatible servers want.
    """

    remote = True

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint: str = "",
        access_key: str = "",
        secret_key: str = "",
        region: str = "us-east-1",
        scheme: str = "https",
        path_style: bool = True,
        connect_timeout_s: float = 5.0,
        request_timeout_s: float = 30.0,
    ):
        if "://" in endpoint:
            scheme, endpoint = endpoint.split("://", 1)
        self.bucket = bucket.strip("/")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = endpoint.rstrip("/")
        self.filesystem = pafs.S3FileSystem(
            access_key=access_key or None,
            secret_key=secret_key or None,
            region=region,
            scheme=scheme,
            endpoint_override=self.endpoint or None,
            force_virtual_addressing=not path_style,
            connect_timeout=connect_timeout_s,
            request_timeout=request_timeout_s,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3),
        )
        _live_s3.add(self)

    def path(self, key: str) -> str:
        return f"{self.bucket}/{self.prefix}{key}" if key or self.prefix else self.bucket

    def put(self, key: str, data: bytes | pa.Buffer) -> None:
        with self._errors(key):
            with self.filesystem.open_output_stream(self.path(key)) as f:
                f.write(data)

    def close(self) -> None:
        self.filesystem = None  # type: ignore[assignment]
        _live_s3.discard(self)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} at {self.endpoint or 'AWS'}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@atexit.register
def _close_s3_stores() -> None:
    # Registered after pyarrow.fs's own finalizer, so it runs before it: S3 filesystems must be
    # gone before the AWS SDK is finalized, or the interpreter can crash on exit.
    for store in list(_live_s3):
        store.close()

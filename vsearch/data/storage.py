"""Dataset URIs to filesystems: local paths and ``s3://`` (through s3fs).

The S3 endpoint comes from ``VSEARCH_S3_ENDPOINT`` (for MinIO, moto or another S3-compatible store);
credentials come from the standard AWS variables and are never logged.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

S3_ENDPOINT_VARIABLE = "VSEARCH_S3_ENDPOINT"


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem that holds ``uri`` and the path inside it."""
    if uri.startswith("s3://"):
        import s3fs

        endpoint = os.environ.get(S3_ENDPOINT_VARIABLE) or None
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
        return fs, uri.removeprefix("s3://").rstrip("/")
    if is_remote(uri):
        protocol = uri.split("://", 1)[0]
        return fsspec.filesystem(protocol), uri.split("://", 1)[1].rstrip("/")
    path = uri.removeprefix("file://")
    return LocalFileSystem(auto_mkdir=True), str(Path(path).expanduser().absolute())


def zarr_store(uri: str, *, read_only: bool = True):
    """A zarr store for a local folder or an ``s3://`` prefix (through s3fs, with ``VSEARCH_S3_ENDPOINT``)."""
    from zarr.storage import FsspecStore, LocalStore

    if uri.startswith("s3://"):
        endpoint = os.environ.get(S3_ENDPOINT_VARIABLE) or None
        options = {"endpoint_url": endpoint, "skip_instance_cache": True}
        return FsspecStore.from_url(uri.rstrip("/"), storage_options=options, read_only=read_only)
    if is_remote(uri):
        return FsspecStore.from_url(uri.rstrip("/"), read_only=read_only)
    return LocalStore(filesystem(uri)[1], read_only=read_only)


def publish(uri: str, data: bytes) -> str:
    """Write ``data`` to ``uri`` whole: a local file is written beside and renamed over (never half-written); an
    S3 object is one PUT, which is atomic. Returns the path or URI written."""
    fs, path = filesystem(uri)
    if is_remote(uri):
        fs.pipe_file(path, data)
        return uri
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    partial = Path(f"{path}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
    return path


def publish_table(uri: str, table) -> str:
    """A pandas DataFrame published as one Parquet file (``publish``)."""
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return publish(uri, buffer.getvalue())


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def absolute(uri: str) -> str:
    """``uri`` with a local path made absolute (trials and workers run in other working directories)."""
    return uri if is_remote(uri) else str(Path(uri.removeprefix("file://")).expanduser().absolute())

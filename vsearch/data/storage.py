"""Dataset URIs to filesystems: local paths and ``s3://`` (through s3fs).

The S3 endpoint comes from ``VSEARCH_S3_ENDPOINT`` (for MinIO, moto or another S3-compatible store);
credentials come from the standard AWS variables and are never logged.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

S3_ENDPOINT_VARIABLE = "VSEARCH_S3_ENDPOINT"


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


# where botocore looks for credentials: a change of any of these is looked up again
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                        "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_EC2_METADATA_DISABLED")  # fmt: skip


@lru_cache(maxsize=4)
def _s3_credentials_found(environment: tuple[str | None, ...]) -> bool:
    from botocore.session import Session

    return Session().get_credentials() is not None


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem that holds ``uri`` and the path inside it; an ``s3://`` URI with no AWS credentials to be
    found is refused, naming it (before any request could fail deep inside a job)."""
    if uri.startswith("s3://"):
        import s3fs

        if not _s3_credentials_found(tuple(os.environ.get(v) for v in CREDENTIAL_VARIABLES)):
            raise ValueError(
                f"{uri}: no S3 credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                "or run where an instance or pod role provides them)"
            )
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

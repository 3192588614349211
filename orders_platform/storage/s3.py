"""S3 for the Parquet lake: fsspec/s3fs storage options and a dagster-aws ``S3Resource``.

What uses what:

- The lake reads and writes through fsspec/s3fs, and Polars' object_store handles lazy scans
  (``ParquetLakeIOManager``). ``lake_storage_options(settings)`` builds its
  ``storage_options`` from ``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID`` and
  ``AWS_SECRET_ACCESS_KEY`` (plus ``AWS_SESSION_TOKEN`` when it is set).
- boto3, through dagster-aws ``S3Resource`` (``s3_resource(settings)``), is used only where
  the S3 API itself is the right tool:
  ``check_lake_bucket`` makes one HeadBucket call and turns a missing bucket or a refused
  credential into an error that names ``ORDERS_LAKE_ROOT``. ``sweep_lake`` removes what
  crashed writes leave behind: orphaned ``.part-0.parquet.*.tmp`` objects and incomplete
  multipart uploads (ListObjectsV2 / DeleteObjects in batches of 1000, and
  ListMultipartUploads / AbortMultipartUpload).

Secrets: the access key and secret go into resource config as ``dagster.EnvVar``
references, never as values. Dagster resolves them when the resource is initialised in
the run worker, so the job snapshot stored in the instance database, the UI and the run
config only ever hold ``{"env": "AWS_SECRET_ACCESS_KEY"}``. A plain string in resource
config, on the other hand, is stored in the job snapshot (see
``test_production_storage.py``). Outside a Dagster run, resolve them explicitly with
``resolve_storage_options`` or ``resource.process_config_and_initialize()``.

When neither key variable is set, credentials come from the default AWS chain (instance
profile, IRSA or workload identity, ``AWS_PROFILE``). That is the preferred set-up on AWS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from dagster import EnvVar
from dagster_aws.s3 import S3Resource

from orders_platform.settings import SettingsError
from orders_platform.storage.lake import _is_tmp_name

__all__ = [
    "LakeSweepReport",
    "check_lake_bucket",
    "is_s3_url",
    "lake_storage_options",
    "resolve_storage_options",
    "s3_resource",
    "split_s3_url",
    "sweep_lake",
]

ACCESS_KEY_VAR = "AWS_ACCESS_KEY_ID"
SECRET_KEY_VAR = "AWS_SECRET_ACCESS_KEY"
SESSION_TOKEN_VAR = "AWS_SESSION_TOKEN"
LAKE_ROOT_VAR = "ORDERS_LAKE_ROOT"
ENDPOINT_VAR = "AWS_ENDPOINT_URL"

# Crash leftovers younger than this may belong to a write still in progress.
DEFAULT_SWEEP_AGE = timedelta(hours=6)
_DELETE_BATCH = 1000  # DeleteObjects limit


# --------------------------------------------------------------------------------------------
# settings -> options


def is_s3_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("s3://", "s3a://"))


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ``("bucket", "some/prefix")``. A URL without a bucket
    raises ``SettingsError`` naming ORDERS_LAKE_ROOT."""
    parts = urlsplit(str(url))
    if parts.scheme not in ("s3", "s3a") or not parts.netloc:
        raise SettingsError(
            f"{LAKE_ROOT_VAR}: must look like s3://bucket/prefix for an S3 lake (got {url!r})"
        )
    return parts.netloc, parts.path.strip("/")


def _setting(settings_like: Any, name: str) -> str | None:
    value = getattr(settings_like, name, None)
    return str(value) if value not in (None, "") else None


def _lake_root(settings_like: Any) -> str | None:
    return _setting(settings_like, "lake_root_resolved") or _setting(settings_like, "lake_root")


def _endpoint(settings_like: Any) -> str | None:
    endpoint = _setting(settings_like, "aws_endpoint_url")
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise SettingsError(
            f"{ENDPOINT_VAR}: must be an http(s) URL such as https://s3.example.com "
            f"(got {endpoint!r})"
        )
    return endpoint


def _credential_refs() -> dict[str, EnvVar]:
    """EnvVar references for the key pair (and session token) that are set now.

    Only whether they are set is checked here (``EnvVar.get_value``); the values are
    resolved by Dagster when the resource is initialised.
    """
    has_key = bool(EnvVar(ACCESS_KEY_VAR).get_value())
    has_secret = bool(EnvVar(SECRET_KEY_VAR).get_value())
    if has_key != has_secret:
        missing = SECRET_KEY_VAR if has_key else ACCESS_KEY_VAR
        present = ACCESS_KEY_VAR if has_key else SECRET_KEY_VAR
        raise SettingsError(
            f"{missing} must be set together with {present} (or unset both to use the default "
            "AWS credential chain: instance profile, IRSA, AWS_PROFILE)"
        )
    if not has_key:
        return {}
    refs = {"key": EnvVar(ACCESS_KEY_VAR), "secret": EnvVar(SECRET_KEY_VAR)}
    if EnvVar(SESSION_TOKEN_VAR).get_value():
        refs["token"] = EnvVar(SESSION_TOKEN_VAR)
    return refs


def lake_storage_options(settings_like: Any) -> dict[str, str]:
    """fsspec/s3fs ``storage_options`` for the lake root of ``settings_like``.

    ``settings_like`` is anything with the attributes of ``Settings`` that are used here:
    ``lake_root`` (or ``lake_root_resolved``), ``aws_endpoint_url`` and ``aws_region``.
    For a local lake the options are ``{}``. For an ``s3://`` lake they contain
    ``endpoint_url`` and ``region`` when those are set, and ``key``/``secret``/``token`` as
    ``EnvVar`` references (``EnvVar`` is a ``str``). Use the result only as resource config.
    To read the lake outside a run, pass it through ``resolve_storage_options``.
    """
    root = _lake_root(settings_like)
    if root is not None and not is_s3_url(root):
        return {}
    if root is not None:
        split_s3_url(root)  # validate: fails naming ORDERS_LAKE_ROOT
    options: dict[str, str] = {}
    endpoint = _endpoint(settings_like)
    if endpoint:
        options["endpoint_url"] = endpoint
    region = _setting(settings_like, "aws_region")
    if region:
        options["region"] = region
    options.update(_credential_refs())
    return options


def resolve_storage_options(options: Mapping[str, str]) -> dict[str, str]:
    """Replace ``EnvVar`` references by their values (``EnvVar.get_value``), for use outside
    a Dagster run: repair scripts, notebooks, tests. Keep the result out of logs and config."""
    resolved: dict[str, str] = {}
    for key, value in options.items():
        if isinstance(value, EnvVar):
            actual = value.get_value()
            if actual is None:
                raise SettingsError(f"{value.env_var_name} is not set")
            resolved[key] = actual
        else:
            resolved[key] = value
    return resolved


def s3_resource(settings_like: Any) -> S3Resource:
    """dagster-aws ``S3Resource`` for the same endpoint, region and credentials as the lake
    (credentials as ``EnvVar`` references, or the default AWS chain)."""
    refs = _credential_refs()
    return S3Resource(
        endpoint_url=_endpoint(settings_like),
        region_name=_setting(settings_like, "aws_region"),
        aws_access_key_id=refs.get("key"),
        aws_secret_access_key=refs.get("secret"),
        aws_session_token=refs.get("token"),
    )


# --------------------------------------------------------------------------------------------
# boto3 where it helps


def _client(s3: S3Resource | Any) -> Any:
    return s3.get_client() if isinstance(s3, S3Resource) else s3


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def check_lake_bucket(s3: S3Resource | Any, lake_root: str) -> str:
    """Fail with a clear message if the lake bucket does not exist or cannot be reached.

    ``s3`` is an initialised ``S3Resource`` (or a boto3 S3 client). Returns the bucket name.
    Error messages name the variables (ORDERS_LAKE_ROOT, AWS_ENDPOINT_URL, the key pair),
    never the secret's value.
    """
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    bucket, _ = split_s3_url(lake_root)
    client = _client(s3)
    where = getattr(getattr(client, "meta", None), "endpoint_url", None) or "S3"
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = _error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise SettingsError(
                f"{LAKE_ROOT_VAR}={lake_root}: bucket {bucket!r} does not exist at {where}; "
                "create it or fix the variable"
            ) from None
        if code in ("403", "AccessDenied", "Forbidden"):
            raise SettingsError(
                f"{LAKE_ROOT_VAR}={lake_root}: access to bucket {bucket!r} at {where} was "
                f"refused; check {ACCESS_KEY_VAR}/{SECRET_KEY_VAR} or the machine's role"
            ) from None
        raise SettingsError(
            f"{LAKE_ROOT_VAR}={lake_root}: HeadBucket on {bucket!r} at {where} failed ({code})"
        ) from None
    except EndpointConnectionError:
        raise SettingsError(
            f"{LAKE_ROOT_VAR}={lake_root}: cannot connect to {where} (check {ENDPOINT_VAR})"
        ) from None
    except BotoCoreError as exc:
        raise SettingsError(
            f"{LAKE_ROOT_VAR}={lake_root}: cannot reach bucket {bucket!r} at {where}: "
            f"{type(exc).__name__}"
        ) from None
    return bucket


@dataclass(frozen=True)
class LakeSweepReport:
    """Keys removed by ``sweep_lake``."""

    deleted_tmp_objects: tuple[str, ...]
    aborted_uploads: tuple[str, ...]


def _pages(client: Any, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    yield from client.get_paginator(operation).paginate(**kwargs)


def sweep_lake(
    s3: S3Resource | Any,
    lake_root: str,
    older_than: timedelta = DEFAULT_SWEEP_AGE,
    now: datetime | None = None,
) -> LakeSweepReport:
    """Remove what crashed writes left under the lake root, if it is older than ``older_than``.

    - temporary objects ``.../dt=*/.part-0.parquet.<uuid>.tmp``. Readers never see them
      (they do not end in ``.parquet``), and the next successful write of that partition
      removes them anyway. This sweep covers partitions that are never written again.
    - incomplete multipart uploads, which are invisible but billed. A bucket lifecycle
      rule ``AbortIncompleteMultipartUpload`` does the same job and is the better choice
      where you may set one.

    Data files (``part-0.parquet``) are never touched.
    """
    bucket, prefix = split_s3_url(lake_root)
    key_prefix = f"{prefix}/" if prefix else ""
    client = _client(s3)
    cutoff = (now or datetime.now(UTC)) - older_than

    stale: list[str] = []
    for page in _pages(client, "list_objects_v2", Bucket=bucket, Prefix=key_prefix):
        for obj in page.get("Contents", []):
            name = obj["Key"].rsplit("/", 1)[-1]
            if _is_tmp_name(name) and obj["LastModified"] < cutoff:
                stale.append(obj["Key"])
    for start in range(0, len(stale), _DELETE_BATCH):
        batch = stale[start : start + _DELETE_BATCH]
        client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )

    aborted: list[str] = []
    for page in _pages(client, "list_multipart_uploads", Bucket=bucket, Prefix=key_prefix):
        for upload in page.get("Uploads", []):
            if upload["Initiated"] < cutoff:
                with contextlib.suppress(client.exceptions.NoSuchUpload):
                    client.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                aborted.append(upload["Key"])
    return LakeSweepReport(deleted_tmp_objects=tuple(stale), aborted_uploads=tuple(aborted))

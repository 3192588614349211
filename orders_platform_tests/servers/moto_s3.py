"""A moto S3 server that enforces request signatures (the ``s3`` fixture of
``integration/conftest.py`` starts one per test).

``ThreadedMotoServer`` on 127.0.0.1 with an ephemeral port. Buckets ``bucket`` and
``dagster-logs`` are created, an access key is issued through moto's IAM, and authentication
is switched on before the platform runs, so a wrong or unresolved secret fails as on AWS.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

BUCKET = "bucket"
LOGS_BUCKET = "dagster-logs"
LAKE_ROOT = f"s3://{BUCKET}/lake"
REGION = "us-east-1"


def lake_url(key, partition: str) -> str:
    """Where the lake IO manager stores partition `partition` of asset `key` (SPEC §7)."""
    return f"{LAKE_ROOT}/{'/'.join(key.path)}/dt={partition}/part-0.parquet"


@dataclass
class S3Env:
    endpoint: str
    key_id: str
    secret: str

    def polars_options(self) -> dict[str, str]:
        return {
            "aws_endpoint_url": self.endpoint,
            "aws_access_key_id": self.key_id,
            "aws_secret_access_key": self.secret,
            "aws_region": REGION,
            "aws_allow_http": "true",
        }

    def read_lake(self, key, partition: str):
        """The lake's Parquet file of asset `key` and `partition`, read back with Polars."""
        import polars as pl

        return pl.read_parquet(
            lake_url(key, partition), storage_options=self.polars_options(), hive_partitioning=False
        )

    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(
            endpoint_url=self.endpoint,
            key=self.key_id,
            secret=self.secret,
            client_kwargs={"region_name": REGION},
            skip_instance_cache=True,
            use_listings_cache=False,
        )

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
        )


def moto_reset(endpoint: str) -> None:
    # moto keeps its state per process, across server instances.
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@contextlib.contextmanager
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Env]:
    """Start the server and point the AWS_* variables and ORDERS_LAKE_ROOT at it (through
    `monkeypatch`); stop it and forget its buckets and keys on exit."""
    moto_server = pytest.importorskip("moto.server")
    import boto3
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    # boto3's default session caches the credentials it first resolves from the environment,
    # i.e. this test's key pair, for the rest of the process. Clients without explicit keys
    # (dagster-aws's S3ComputeLogManager; the Snowflake connector's platform detection calls
    # STS GetCallerIdentity on every login) must not see another test's key: a fresh default
    # session now, and none left behind.
    boto3.DEFAULT_SESSION = None
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    auth = pytest.MonkeyPatch()
    try:
        moto_reset(endpoint)
        setup = {
            "endpoint_url": endpoint,
            "region_name": REGION,
            "aws_access_key_id": "setup",
            "aws_secret_access_key": "setup",
        }
        s3_client = boto3.client("s3", **setup)
        for bucket in (BUCKET, LOGS_BUCKET):
            s3_client.create_bucket(Bucket=bucket)
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="orders-platform")
        iam.put_user_policy(
            UserName="orders-platform",
            PolicyName="lake",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
                }
            ),
        )
        key = iam.create_access_key(UserName="orders-platform")["AccessKey"]
        # From here on every request must be signed with the issued key pair.
        auth.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        auth.setattr(ActionAuthenticatorMixin, "request_count", 0)

        env = S3Env(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", env.key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", env.secret)
        monkeypatch.setenv("AWS_REGION", REGION)
        monkeypatch.setenv("ORDERS_LAKE_ROOT", LAKE_ROOT)
        yield env
    finally:
        auth.undo()  # authentication off again, then forget this test's buckets and keys
        with contextlib.suppress(OSError):
            moto_reset(endpoint)
        server.stop()
        boto3.DEFAULT_SESSION = None

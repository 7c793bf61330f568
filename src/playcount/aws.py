"""AWS clients from the standard credential chain, with region and endpoint overrides.

`Aws` is the client factory that storages, stores and notifiers receive (they never read the
environment themselves). boto3 resolves credentials the usual way: a profile, `AWS_*`
environment variables, or an instance/task role; it also honours `AWS_ENDPOINT_URL` (and
`AWS_ENDPOINT_URL_<SERVICE>`) for S3-compatible stores and local emulators.
boto3 is imported only when a client is first needed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from playcount.errors import MissingExtraError, PlaycountError

__all__ = ["Aws", "S3Access", "import_boto3"]

_AWS_S3_HOST = "amazonaws.com"


def import_boto3() -> Any:
    """boto3, or a `MissingExtraError` naming the extra that brings it."""
    try:
        import boto3
    except ImportError as e:
        raise MissingExtraError("boto3", "aws") from e
    return boto3


@dataclass(frozen=True)
class S3Access:
    """What a non-boto3 S3 reader (DuckDB httpfs) needs: credentials, region, endpoint."""

    key_id: str
    secret: str
    session_token: str | None
    region: str
    endpoint: str | None
    """`host[:port]` of an S3-compatible endpoint, None for AWS itself."""
    use_ssl: bool = True


class Aws:
    """A boto3 session factory. One session per instance; clients are cached per service/args.

    `region`, `endpoint_url` and `profile` override what the credential chain would pick;
    `client(service, region=..., endpoint_url=...)` overrides them again for one service.
    Tests register botocore event hooks on the cached clients to inject faults.
    """

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.profile = profile
        self.config = config or {"retries": {"mode": "standard", "max_attempts": 5}}
        self._session: Any = None
        self._clients: dict[tuple[str, str | None, str | None], Any] = {}
        self._mutex = threading.Lock()

    def session(self) -> Any:
        """The boto3 session (created on first use)."""
        with self._mutex:
            if self._session is None:
                boto3 = import_boto3()
                try:
                    self._session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
                except Exception as e:  # botocore.exceptions.ProfileNotFound and friends
                    raise PlaycountError(
                        f"cannot open an AWS session with profile `{self.profile}`: {e}",
                        fix="check aws.profile (or AWS_PROFILE) against ~/.aws/config",
                    ) from e
            return self._session

    def client(self, service: str, *, region: str | None = None, endpoint_url: str | None = None) -> Any:
        """A (cached) boto3 client for `service`."""
        key = (service, region or self.region, endpoint_url or self.endpoint_url)
        session = self.session()
        with self._mutex:
            if key not in self._clients:
                from botocore.config import Config

                self._clients[key] = session.client(
                    service,
                    region_name=key[1] or session.region_name or "us-east-1",
                    endpoint_url=key[2],
                    config=Config(**self.config),
                )
            return self._clients[key]

    def s3_access(self) -> S3Access:
        """Credentials, region and endpoint of the S3 client, for DuckDB's httpfs secret."""
        from urllib.parse import urlsplit

        client = self.client("s3")
        creds = self.session().get_credentials()
        if creds is None:
            raise PlaycountError(
                "no AWS credentials found for S3",
                fix="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with an instance role",
            )
        frozen = creds.get_frozen_credentials()
        url = urlsplit(client.meta.endpoint_url)
        custom = not (url.hostname or "").endswith(_AWS_S3_HOST)
        return S3Access(
            key_id=frozen.access_key,
            secret=frozen.secret_key,
            session_token=frozen.token,
            region=client.meta.region_name,
            endpoint=url.netloc if custom else None,
            use_ssl=url.scheme != "http",
        )

"""The AWS tier: a real moto server on 127.0.0.1 over HTTP, started once per session.

Every test starts from an empty account (`POST /moto-api/reset`), with fake credentials and
`AWS_ENDPOINT_URL` pointing at the server, so code that uses the standard credential chain
(the CLI) talks to moto too. No boto3 call is mocked in-process. The server and the account
fixtures (`moto_url`, `aws_env`, `aws`, `infra`) are in `tests/conftest.py`, shared with the
airflow tier; the helpers are in `tests/aws_helpers.py`.
"""

from __future__ import annotations

import pytest

pytest.importorskip("boto3", reason="the aws tier needs the `aws` extra")
pytest.importorskip("moto", reason="the aws tier needs moto[server] (the `dev` extra)")


@pytest.fixture(autouse=True)
def _empty_account(aws_env: str) -> str:
    """Every test of this tier runs against an empty moto account."""
    return aws_env

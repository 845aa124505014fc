"""Logging: third-party loggers pinned so that a DEBUG level for the app never logs a secret.

At DEBUG, botocore writes request parameters and response bodies (the STS
``AssumeRoleWithWebIdentity`` call carries the managed-identity token; its answer carries
``SecretAccessKey`` and ``SessionToken``), the canonical request and the signed headers
(``X-Amz-Security-Token``); urllib3 writes URLs; azure-core's HTTP logging policy writes
request headers at INFO; MSAL and azure-identity write token-acquisition detail. The
connector's own loggers never log a secret. ``pin_third_party_loggers`` sets each of those
loggers (and so their children) to WARNING: a root or app logger at DEBUG (host.json
``logLevel``, ``logging.basicConfig(level=DEBUG)``) no longer reaches them. Their warnings and
errors (failures, not payloads) still pass. tests/test_logging_secrets.py runs the
end-to-end flow at DEBUG and searches everything that was written for every secret used.
"""
from __future__ import annotations

import logging

PINNED = {
    "botocore": logging.WARNING,
    "boto3": logging.WARNING,
    "s3transfer": logging.WARNING,
    "urllib3": logging.WARNING,
    "requests": logging.WARNING,
    "msal": logging.WARNING,
    "azure.identity": logging.WARNING,
    "azure.core": logging.WARNING,  # incl. .pipeline.policies.http_logging_policy
    "azure.storage": logging.WARNING,
    "azure.data.tables": logging.WARNING,
    "azure.keyvault": logging.WARNING,
    "azure.monitor.ingestion": logging.WARNING,
}


def pin_third_party_loggers() -> None:
    for name, level in PINNED.items():
        logging.getLogger(name).setLevel(level)

"""Azure Storage queues: the work queue (object references) and the poison queue.

Messages are base64 text, the encoding host.json's ``messageEncoding`` tells the Functions host
to expect, so the queue trigger and this module read each other's messages.
"""
from __future__ import annotations

import logging
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import (
    BinaryBase64DecodePolicy,
    QueueClient,
    QueueServiceClient,
    TextBase64EncodePolicy,
)

from .config import Settings

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
MAX_TEXT_BYTES = MAX_MESSAGE_BYTES * 3 // 4 - 16  # room for base64


def queue_service(settings: Settings, credential: TokenCredential) -> QueueServiceClient:
    if settings.storage_connection:
        return QueueServiceClient.from_connection_string(settings.storage_connection)
    return QueueServiceClient(account_url=settings.queue_service_uri, credential=credential)


def table_client(settings: Settings, credential: TokenCredential) -> Any:
    from azure.data.tables import TableClient

    from .transport import env_transport

    # a checkpoint save per accepted batch: proxy and CA settings read once (transport.py)
    if settings.storage_connection:
        url = TableClient.from_connection_string(settings.storage_connection,
                                                 table_name=settings.checkpoint_table).url
        return TableClient.from_connection_string(settings.storage_connection,
                                                  table_name=settings.checkpoint_table,
                                                  transport=env_transport(url))
    return TableClient(endpoint=settings.table_service_uri, table_name=settings.checkpoint_table,
                       credential=credential,
                       transport=env_transport(settings.table_service_uri))


class Queue:
    """One Storage queue: send text, read depth, created on first use."""

    def __init__(self, service: QueueServiceClient, name: str):
        self.name = name
        self._client: QueueClient = service.get_queue_client(
            name, message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=BinaryBase64DecodePolicy())
        self._created = False

    @property
    def client(self) -> QueueClient:
        return self._client

    def ensure(self) -> None:
        if not self._created:
            try:
                self._client.create_queue()
            except ResourceExistsError:
                pass
            self._created = True

    def send(self, text: str, *, delay: int = 0) -> None:
        """Send one message; ``delay`` seconds before it becomes visible."""
        if len(text.encode()) > MAX_TEXT_BYTES:
            raise ValueError(f"queue message of {len(text.encode())} bytes exceeds "
                             f"{MAX_TEXT_BYTES}")
        self.ensure()
        self._client.send_message(text, visibility_timeout=delay or None)

    def depth(self) -> int:
        self.ensure()
        return int(self._client.get_queue_properties().approximate_message_count or 0)

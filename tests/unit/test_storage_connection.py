"""Storage is reached the way the Functions runtime reaches it: a connection string, or the managed identity."""

from __future__ import annotations

import sys

import pytest

from shared.azure.storage import StorageConnection
from shared.store.runs import RunStore


def test_connection_string_wins() -> None:
    connection = StorageConnection.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert connection.connection_string == "UseDevelopmentStorage=true"


def test_identity_based_storage_gets_a_credential() -> None:
    env = {"AzureWebJobsStorage__accountName": "striposte"}
    connection = StorageConnection.from_env(env)
    assert connection.connection_string is None
    assert connection.table_endpoint == "https://striposte.table.core.windows.net"
    assert connection.queue_endpoint == "https://striposte.queue.core.windows.net"
    store = RunStore(connection)
    assert store._credential is not None  # without it, every table and queue request would be refused
    assert "azure.identity.aio" in sys.modules


def test_no_storage_setting_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="AzureWebJobsStorage"):
        StorageConnection.from_env({})

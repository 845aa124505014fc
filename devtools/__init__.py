"""Local stand-ins for the cloud services the connector talks to (tests and demos only).

`LocalStack` (in :mod:`devtools.stack`) starts moto, Azurite and the project's own emulators
(managed identity, Logs Ingestion API, Key Vault) on 127.0.0.1 so the real SDKs run over sockets.
"""

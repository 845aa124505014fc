"""HTTP transports for the Azure SDK clients of the hot path (uploads, checkpoint saves).

requests reads the environment on every request when ``Session.trust_env`` is on (its
default): proxies and NO_PROXY (two walks of ``os.environ``), the CA bundle variables and a
stat of ``~/.netrc`` — about a third of the CPU of one upload or checkpoint save in our
process (measured: 1,058 ``getproxies_environment`` calls for 304 uploads and 224 saves of a
100 MB VPC Flow object). Here the same settings are read once, when the client is built, for
the one endpoint the session talks to; a change of those variables takes effect at the
worker's next start.
"""
from __future__ import annotations

import os
from typing import Any


def env_transport(url: str, *, pool_maxsize: int = 10, **options: Any) -> Any:
    """A ``RequestsTransport`` for ``url`` with the environment's proxy (honouring NO_PROXY)
    and CA bundle (REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE) as requests would pick them for
    it, read now. ``options`` go to the transport (timeouts)."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    session.trust_env = False  # the settings below instead of a lookup per request
    session.proxies.update(requests.utils.get_environ_proxies(url))
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    verify: Any = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                   or True)
    return RequestsTransport(session=session, session_owner=True, use_env_settings=False,
                             connection_verify=verify, **options)

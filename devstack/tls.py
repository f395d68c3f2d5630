"""The TLS context that the stack's HTTP helpers pass to httpx.

Without ``verify=``, every ``httpx.get``/``httpx.request``/``httpx.Client`` builds a new TLS
context, parsing the whole CA bundle: about 50 ms of CPU, for plain-HTTP loopback calls too.
The helpers poll the hub, the pods and the stand-ins several times a second while they wait,
so on a two-core CI machine that work slowed the very processes being waited for. They
pass this context instead: httpx's own default (the same CAs), built once per process.
"""

from __future__ import annotations

import ssl
from functools import cache

import httpx

__all__ = ["tls"]


@cache
def tls() -> ssl.SSLContext:
    """httpx's default TLS context, built on first use and then shared."""
    return httpx.create_ssl_context()

"""The loopback OIDC provider wrapper, now in :mod:`iris_jupyterhub.demo.idp` (re-exported)."""

from __future__ import annotations

from iris_jupyterhub.demo.idp import (
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PROVIDERS,
    Endpoint,
    IdPError,
    IdPProcess,
    default_clients,
    free_port,
    make_rsa_jwk,
    public_jwk,
)

__all__ = [
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_PROVIDERS",
    "Endpoint",
    "IdPError",
    "IdPProcess",
    "default_clients",
    "free_port",
    "make_rsa_jwk",
    "public_jwk",
]

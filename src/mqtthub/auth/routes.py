"""Every HTTP endpoint of the identity domain, gathered in one router for the app factory."""

from __future__ import annotations

from fastapi import APIRouter

from mqtthub.auth import device_tokens, devices, mqtt_tokens, organizations, users
from mqtthub.auth.attempts import LoginGuard
from mqtthub.auth.ca import CertificateAuthority
from mqtthub.auth.certificates import certificates_router
from mqtthub.auth.login import login_router


def identity_router(guard: LoginGuard, ca: CertificateAuthority) -> APIRouter:
    """Login (limited by ``guard``), organizations, users, devices, tokens and certificates under ``/api/v1``."""
    router = APIRouter()
    router.include_router(login_router(guard))
    for module in (organizations, users, devices, device_tokens, mqtt_tokens):
        router.include_router(module.router)
    router.include_router(certificates_router(ca))
    return router

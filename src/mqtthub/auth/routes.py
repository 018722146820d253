"""Every HTTP endpoint of the identity domain, gathered in one router for the app factory."""

from __future__ import annotations

from fastapi import APIRouter

from mqtthub.auth import device_tokens, devices, mqtt_tokens, organizations, users
from mqtthub.auth.ca import CertificateAuthority
from mqtthub.auth.certificates import certificates_router
from mqtthub.auth.login import LoginGuard, login_router
from mqtthub.config import Settings


def identity_router(settings: Settings, ca: CertificateAuthority) -> APIRouter:
    """Login, organizations, users, devices, tokens and certificates under ``/api/v1``."""
    router = APIRouter()
    router.include_router(login_router(LoginGuard.from_settings(settings)))
    for module in (organizations, users, devices, device_tokens, mqtt_tokens):
        router.include_router(module.router)
    router.include_router(certificates_router(ca))
    return router

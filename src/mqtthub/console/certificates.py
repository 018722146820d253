"""A device's client certificates on its page (administrators): issue one, download it once, revoke one.

Issuing calls the same functions as ``POST /api/v1/organizations/{id}/devices/{id}/certificate``: the answer
shows the one-time PKCS#12 download link and the bundle's password, once (they are never stored in a page
or a URL of the console). Revoking ends the connections made with the certificate at once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from mqtthub.auth.ca import CertificateAuthority
from mqtthub.auth.certificates import CertificateIssued, issue_certificate, list_certificates, revoke_certificate, shown
from mqtthub.auth.devices import get_device
from mqtthub.console.routing import ConsoleRoute
from mqtthub.console.session import PREFIX
from mqtthub.console.templating import OrgFrame, is_htmx, render
from mqtthub.models import Device
from mqtthub.web.deps import SecretsDep, SessionDep, SettingsDep
from mqtthub.web.state import provide

AuthorityDep = Annotated[CertificateAuthority, Depends(provide(CertificateAuthority))]

router = APIRouter(
    prefix=PREFIX + "/orgs/{org_id}/devices/{device_id}/certificates",
    route_class=ConsoleRoute,
    include_in_schema=False,
)


async def _part(
    request: Request, frame: OrgFrame, session: SessionDep, device: Device, issued: CertificateIssued | None = None
) -> Response:
    context = {
        "frame": frame,
        "device": device,
        "certificates": await list_certificates(session, frame.org.id, device_id=device.id),
        "issued": issued,
    }
    return render(request, "partials/certificates.html", context)


@router.get("", summary="A device's certificates")
async def list_part(request: Request, device_id: str, frame: OrgFrame, session: SessionDep) -> Response:
    """The device's certificates (the part of its page htmx loads)."""
    return await _part(request, frame, session, await get_device(session, frame.org.id, device_id))


@router.post("", summary="Issue a device certificate")
async def issue(
    request: Request,
    device_id: str,
    frame: OrgFrame,
    session: SessionDep,
    secrets: SecretsDep,
    settings: SettingsDep,
    ca: AuthorityDep,
) -> Response:
    """A new certificate for the device (CN = its id); the answer holds its one-time download link."""
    device = await get_device(session, frame.org.id, device_id)
    bundle = await issue_certificate(
        session,
        secrets,
        ca,
        organization_id=frame.org.id,
        validity=timedelta(days=settings.client_cert_validity_days),
        device=device,
    )
    return await _part(request, frame, session, device, issued=shown(request, bundle))


@router.post("/{serial}/revoke", summary="Revoke a device certificate")
async def revoke(request: Request, device_id: str, serial: str, frame: OrgFrame, session: SessionDep) -> Response:
    """Revoke the certificate; clients connected with it are disconnected at once."""
    device = await get_device(session, frame.org.id, device_id)
    await revoke_certificate(session, frame.org.id, serial)
    if is_htmx(request):
        return await _part(request, frame, session, device)
    return RedirectResponse(f"{frame.base}/devices/{device.id}", status_code=303)

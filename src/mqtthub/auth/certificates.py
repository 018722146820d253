"""Client certificates from the hub's CA, delivered in document 003's shape.

Endpoints:

- ``POST   /api/v1/auth/mqtt-certificate`` (any logged-in user of an organization) — a certificate for
  the caller
- ``POST   /api/v1/organizations/{org_id}/devices/{device_id}/certificate`` (org admin) — one for a device
- ``GET    /api/v1/organizations/{org_id}/certificates`` (org admin) — issued certificates
- ``DELETE /api/v1/organizations/{org_id}/certificates/{serial}`` (org admin) — revoke; its clients are
  disconnected and refused from then on
- ``GET    /api/v1/certificates/download/{secret}`` — the PKCS#12 bundle, once, within 15 minutes

Both ``POST``\\s answer ``{"success": true, "data": {p12Url, p12Password, clientId, subTopics}, …}``:
fetch ``p12Url`` (it works once), open it with ``p12Password``, connect to the TLS listener with
``clientId`` and subscribe to ``subTopics``. The private key exists nowhere else: the hub keeps
the bundle encrypted only until it is downloaded.
"""

from __future__ import annotations

import base64
import secrets as random
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.acl import device_rules, user_rules
from mqtthub.auth.ca import CertificateAuthority
from mqtthub.auth.credentials import new_download_secret
from mqtthub.auth.deps import CurrentUser, require_org_access
from mqtthub.auth.devices import get_device
from mqtthub.auth.live import end_access_after_commit
from mqtthub.auth.organizations import get_organization
from mqtthub.crypto import SecretBox
from mqtthub.db.base import utcnow
from mqtthub.errors import NotFoundError, ValidationFailedError
from mqtthub.models import ClientCertificate, Device, User
from mqtthub.web.deps import SecretsDep, SessionDep, SettingsDep

DOWNLOAD_LIFETIME = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class IssuedBundle:
    """A stored certificate record plus what is shown to the requester once."""

    record: ClientCertificate
    download_secret: str
    p12_password: str
    client_id: str
    sub_topics: list[str]


class CertificateConfig(BaseModel):
    """Document 003's ``data`` object."""

    model_config = ConfigDict(populate_by_name=True)

    p12Url: str  # noqa: N815 (the document's field names)
    p12Password: str  # noqa: N815
    clientId: str  # noqa: N815
    subTopics: list[str]  # noqa: N815


class CertificateIssued(BaseModel):
    """Where to fetch the new certificate and how to use it."""

    success: bool = True
    data: CertificateConfig
    serial: str
    expires_at: datetime


class CertificateOut(BaseModel):
    """An issued certificate (never its key)."""

    model_config = ConfigDict(from_attributes=True)

    serial: str
    common_name: str
    device_id: str | None
    user_id: str | None
    created_at: datetime
    not_after: datetime
    revoked_at: datetime | None
    downloaded: bool = Field(description="Whether the one-time download has been used (or has lapsed).")


class CertificateList(BaseModel):
    """Certificates of an organization."""

    certificates: list[CertificateOut]
    count: int


async def issue_certificate(
    session: AsyncSession,
    secrets: SecretBox,
    ca: CertificateAuthority,
    *,
    organization_id: str,
    validity: timedelta,
    device: Device | None = None,
    user: User | None = None,
) -> IssuedBundle:
    """Issue a certificate for a device or a user and keep its PKCS#12 bundle for one download."""
    organization = await get_organization(session, organization_id)
    if device is not None:
        common_name, client_id = device.id, device.id
        sub_topics = list(device_rules(device.id, organization.id).subscribe)
    elif user is not None:
        common_name, client_id = f"user:{user.id}", f"user-{user.id}"
        sub_topics = list(user_rules(user.id).subscribe)
    else:
        raise ValueError("a certificate is issued for a device or a user")
    issued = ca.issue_client_certificate(common_name, validity=validity, organization=organization.short_id)
    password = random.token_urlsafe(18)
    bundle = ca.pkcs12(issued, password, friendly_name=common_name)
    download_secret = new_download_secret()
    record = ClientCertificate(
        serial=issued.serial_hex,
        organization_id=organization.id,
        device_id=device.id if device is not None else None,
        user_id=user.id if user is not None else None,
        common_name=common_name,
        not_after=issued.certificate.not_valid_after_utc,
        download_hash=secrets.hash_token(download_secret),
        download_expires_at=utcnow() + DOWNLOAD_LIFETIME,
        p12_ciphertext=secrets.encrypt(base64.b64encode(bundle).decode()),
    )
    session.add(record)
    await session.flush()
    return IssuedBundle(record, download_secret, password, client_id, sub_topics)


async def list_certificates(
    session: AsyncSession, organization_id: str, *, device_id: str | None = None
) -> list[ClientCertificate]:
    """Certificates issued in the organization (only the device's, when given), oldest first, revoked included."""
    query = select(ClientCertificate).where(ClientCertificate.organization_id == organization_id)
    if device_id is not None:
        query = query.where(ClientCertificate.device_id == device_id)
    return list((await session.scalars(query.order_by(ClientCertificate.created_at))).all())


async def take_download(session: AsyncSession, secrets: SecretBox, download_secret: str) -> tuple[str, bytes]:
    """The PKCS#12 bundle behind a download secret (common name, bytes); the bundle is then erased.

    Raises:
        NotFoundError: unknown, already used or lapsed.
    """
    record = await session.scalar(
        select(ClientCertificate).where(ClientCertificate.download_hash == secrets.hash_token(download_secret))
    )
    if record is None or record.p12_ciphertext is None:
        raise NotFoundError("unknown or already used download link")
    expires_at = record.download_expires_at
    if record.revoked_at is not None or expires_at is None or expires_at <= utcnow():
        raise NotFoundError("the download link has lapsed; issue a new certificate")
    ciphertext = record.p12_ciphertext
    record.p12_ciphertext = None
    record.download_hash = None
    record.download_expires_at = None
    await session.flush()
    return record.common_name, base64.b64decode(secrets.decrypt(ciphertext))


async def revoke_certificate(session: AsyncSession, organization_id: str, serial: str) -> ClientCertificate:
    """Revoke a certificate of the organization; its clients are disconnected once committed.

    Raises:
        NotFoundError: no such certificate in this organization.
    """
    record = await session.scalar(select(ClientCertificate).where(ClientCertificate.serial == serial.lower()))
    if record is None or record.organization_id != organization_id:
        raise NotFoundError("certificate not found")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        record.p12_ciphertext = None
        record.download_hash = None
        await session.flush()
    end_access_after_commit(session, [f"cert:{record.serial}"])
    return record


def shown(request: Request, bundle: IssuedBundle) -> CertificateIssued:
    """What the one who issued a certificate is shown once: its one-time download URL and bundle password."""
    url = str(request.url_for("download_certificate", secret=bundle.download_secret))
    return CertificateIssued(
        data=CertificateConfig(
            p12Url=url, p12Password=bundle.p12_password, clientId=bundle.client_id, subTopics=bundle.sub_topics
        ),
        serial=bundle.record.serial,
        expires_at=bundle.record.not_after,
    )


def _out(record: ClientCertificate) -> CertificateOut:
    return CertificateOut(
        serial=record.serial,
        common_name=record.common_name,
        device_id=record.device_id,
        user_id=record.user_id,
        created_at=record.created_at,
        not_after=record.not_after,
        revoked_at=record.revoked_at,
        downloaded=record.p12_ciphertext is None,
    )


def certificates_router(ca: CertificateAuthority) -> APIRouter:
    """The certificate endpoints, signing with ``ca``."""
    router = APIRouter(tags=["certificates"])

    @router.post("/api/v1/auth/mqtt-certificate", status_code=201, summary="Get an MQTT client certificate")
    async def for_me(
        user: CurrentUser, session: SessionDep, secrets: SecretsDep, settings: SettingsDep, request: Request
    ) -> CertificateIssued:
        """A client certificate for the logged-in user, as a one-time PKCS#12 download."""
        if user.organization_id is None:
            raise ValidationFailedError("your account belongs to no organization")
        account = await session.get(User, user.id)
        assert account is not None
        bundle = await issue_certificate(
            session,
            secrets,
            ca,
            organization_id=user.organization_id,
            validity=timedelta(days=settings.client_cert_validity_days),
            user=account,
        )
        return shown(request, bundle)

    @router.post(
        "/api/v1/organizations/{org_id}/devices/{device_id}/certificate",
        status_code=201,
        summary="Issue a device certificate",
    )
    async def for_device(
        org_id: str,
        device_id: str,
        user: CurrentUser,
        session: SessionDep,
        secrets: SecretsDep,
        settings: SettingsDep,
        request: Request,
    ) -> CertificateIssued:
        """A client certificate for a device (CN = device id), as a one-time PKCS#12 download."""
        require_org_access(user, org_id, admin=True)
        bundle = await issue_certificate(
            session,
            secrets,
            ca,
            organization_id=org_id,
            validity=timedelta(days=settings.client_cert_validity_days),
            device=await get_device(session, org_id, device_id),
        )
        return shown(request, bundle)

    @router.get("/api/v1/organizations/{org_id}/certificates", summary="List certificates")
    async def list_all(org_id: str, user: CurrentUser, session: SessionDep) -> CertificateList:
        """Certificates issued in the organization, revoked ones included."""
        require_org_access(user, org_id, admin=True)
        items = [_out(record) for record in await list_certificates(session, org_id)]
        return CertificateList(certificates=items, count=len(items))

    @router.delete("/api/v1/organizations/{org_id}/certificates/{serial}", summary="Revoke a certificate")
    async def revoke(org_id: str, serial: str, user: CurrentUser, session: SessionDep) -> CertificateOut:
        """Revoke a certificate: connected clients using it are disconnected, new connections refused."""
        require_org_access(user, org_id, admin=True)
        return _out(await revoke_certificate(session, org_id, serial))

    @router.get(
        "/api/v1/certificates/download/{secret}",
        name="download_certificate",
        summary="Download a PKCS#12 bundle (once)",
        response_class=Response,
        responses={200: {"content": {"application/x-pkcs12": {}}}, 404: {"description": "Used or lapsed"}},
    )
    async def download(secret: str, session: SessionDep, secrets: SecretsDep) -> Response:
        """The bundle behind a ``p12Url``; the link works once and for 15 minutes."""
        common_name, bundle = await take_download(session, secrets, secret)
        filename = common_name.replace(":", "-") + ".p12"
        return Response(
            bundle,
            media_type="application/x-pkcs12",
            headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
        )

    return router

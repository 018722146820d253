"""First run: a default organization and an administrator, so a fresh hub can be logged in to."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.auth.passwords import hash_password
from mqtthub.models import Organization, User, UserRole

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True, slots=True)
class FirstRunCredentials:
    """What the operator needs to log in the first time; ``password`` is None when taken from settings."""

    email: str
    password: str | None
    organization_id: str


def make_short_id(name: str) -> str:
    """A 6-10 character lowercase identifier for an organization, readable where the name allows.

    The name's letters and digits come first (at most 6), then random characters
    up to 8, so two organizations with the same name still differ.
    """
    readable = re.sub(r"[^a-z0-9]", "", name.lower())[:6]
    return readable + "".join(secrets.choice(_ALPHABET) for _ in range(8 - len(readable) if readable else 8))


async def bootstrap_first_run(
    session: AsyncSession, *, admin_email: str, admin_password: str | None, organization_name: str
) -> FirstRunCredentials | None:
    """Create the default organization and a platform administrator when there is no user yet.

    Returns the credentials to show once, or None when the hub was set up before.
    """
    if await session.scalar(select(func.count()).select_from(User)):
        return None
    organization = Organization(name=organization_name, short_id=make_short_id(organization_name))
    session.add(organization)
    await session.flush()
    password = admin_password or secrets.token_urlsafe(12)
    session.add(
        User(
            email=admin_email.lower(),
            password_hash=hash_password(password),
            role=UserRole.PLATFORM_ADMIN,
            organization_id=organization.id,
        )
    )
    await session.flush()
    return FirstRunCredentials(
        email=admin_email.lower(),
        password=None if admin_password else password,
        organization_id=organization.id,
    )

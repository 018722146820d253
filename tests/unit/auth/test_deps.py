"""Organization access rules of ``require_org_access``."""

from __future__ import annotations

import pytest

from mqtthub.auth.deps import AuthenticatedUser, require_org_access
from mqtthub.errors import PermissionDeniedError
from mqtthub.models import UserRole


def user(role: UserRole, organization_id: str | None = "org-a") -> AuthenticatedUser:
    return AuthenticatedUser(id="u", email="u@example.com", role=role, organization_id=organization_id)


def test_platform_admin_passes_everything() -> None:
    admin = user(UserRole.PLATFORM_ADMIN)
    assert admin.is_platform_admin
    require_org_access(admin, "org-b", admin=True)


def test_org_admin_manages_only_its_organization() -> None:
    org_admin = user(UserRole.ORG_ADMIN)
    assert not org_admin.is_platform_admin
    require_org_access(org_admin, "org-a", admin=True)
    with pytest.raises(PermissionDeniedError):
        require_org_access(org_admin, "org-b")


def test_member_reads_its_organization_but_does_not_manage_it() -> None:
    member = user(UserRole.ORG_MEMBER)
    require_org_access(member, "org-a")
    with pytest.raises(PermissionDeniedError, match="administrator"):
        require_org_access(member, "org-a", admin=True)
    with pytest.raises(PermissionDeniedError):
        require_org_access(user(UserRole.ORG_MEMBER, None), "org-a")

"""A product's e-mail templates: the named e-mails (subject, body, recipients) its e-mail actions send.

``…/email-templates`` in the API and the console's product page both call these (services only flush).
Subject, body and recipients are sandboxed Jinja2 templates over the event, checked when they are saved
(:class:`~mqtthub.integrations.schemas.EmailTemplateIn`).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.db.base import utcnow
from mqtthub.errors import NotFoundError, ValidationFailedError
from mqtthub.integrations.schemas import EmailTemplateIn
from mqtthub.models import EmailTemplate

MAX_NAME = 200


async def templates_of(session: AsyncSession, product_id: str) -> list[EmailTemplate]:
    """The product's templates, by name."""
    query = select(EmailTemplate).where(EmailTemplate.product_id == product_id).order_by(EmailTemplate.name)
    return list(await session.scalars(query))


async def save_template(session: AsyncSession, product_id: str, name: str, body: EmailTemplateIn) -> EmailTemplate:
    """Create the template ``name``, or replace it.

    Raises:
        ValidationFailedError: a name that is empty or longer than :data:`MAX_NAME` (``name``).
    """
    if not 1 <= len(name) <= MAX_NAME:
        raise ValidationFailedError(f"a template name is 1 to {MAX_NAME} characters", field="name")
    row = await session.scalar(
        select(EmailTemplate).where(EmailTemplate.product_id == product_id, EmailTemplate.name == name)
    )
    now = utcnow()
    if row is None:
        row = EmailTemplate(product_id=product_id, name=name, created_at=now)
        session.add(row)
    row.subject, row.body, row.recipients, row.updated_at = body.subject, body.body, body.recipients, now
    await session.flush()
    return row


async def delete_template(session: AsyncSession, product_id: str, name: str) -> None:
    """Remove the template; actions that name it fail (and are logged) until it exists again.

    Raises:
        NotFoundError: no such template ("Template not found").
    """
    result = await session.execute(
        delete(EmailTemplate).where(EmailTemplate.product_id == product_id, EmailTemplate.name == name)
    )
    if not getattr(result, "rowcount", 0):
        raise NotFoundError("Template not found")

"""Products of an organization: create, list, rename, and how the API and the console show one.

The API (``/api/v1/products``) and the console's Integrations pages call these functions after their own
access checks; like every service here they only flush, and the request commits.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mqtthub.db.base import utcnow
from mqtthub.errors import NotFoundError, ValidationFailedError
from mqtthub.integrations.repository import config_of
from mqtthub.integrations.schemas import ProductOut, ProductUpdate
from mqtthub.models import Organization, Product

NOT_FOUND = "Product not found"


async def product_of(session: AsyncSession, organization_id: str, product_id: str) -> Product:
    """The product ``product_id`` of organization ``organization_id``.

    Raises:
        NotFoundError: no such product in that organization ("Product not found").
    """
    product = await session.get(Product, product_id)
    if product is None or product.organization_id != organization_id:
        raise NotFoundError(NOT_FOUND)
    return product


async def products_of(session: AsyncSession, organization_id: str | None) -> list[Product]:
    """The products of ``organization_id``, oldest first; every organization's when it is None."""
    query = select(Product).order_by(Product.created_at, Product.id)
    if organization_id is not None:
        query = query.where(Product.organization_id == organization_id)
    return list(await session.scalars(query))


async def create_product(session: AsyncSession, organization_id: str, name: str, description: str | None) -> Product:
    """A new product of the organization.

    Raises:
        ValidationFailedError: no such organization.
    """
    if await session.get(Organization, organization_id) is None:
        raise ValidationFailedError("organization_id names no organization", field="organization_id")
    now = utcnow()
    product = Product(
        organization_id=organization_id, name=name, description=description, created_at=now, updated_at=now
    )
    session.add(product)
    await session.flush()
    return product


async def update_product(session: AsyncSession, product: Product, body: ProductUpdate) -> Product:
    """Change the name and, when ``body`` gives it (null included), the description."""
    if body.name is not None:
        product.name = body.name
    if "description" in body.model_fields_set:
        product.description = body.description
    product.updated_at = utcnow()
    await session.flush()
    return product


async def product_view(session: AsyncSession, product: Product) -> ProductOut:
    """The product as the API shows it, with whether it has an MQTT configuration."""
    return ProductOut(
        id=product.id,
        organization_id=product.organization_id,
        name=product.name,
        description=product.description,
        mqtt_configured=await config_of(session, product.id) is not None,
        created_at=product.created_at,
        updated_at=product.updated_at,
    )

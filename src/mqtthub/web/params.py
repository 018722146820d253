"""Query and path parameters shared by the list endpoints, bounded so no number reaches the database unchecked."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_PAGE = 1000
"""Most entries one page of a list endpoint returns."""
MAX_OFFSET = 2**31 - 1
"""Largest ``offset`` accepted: far past any history kept, well inside every database's integer range."""
MAX_ID = 2**63 - 1
"""Largest integer id: the range of the databases' 64-bit integers."""

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Entries skipped, newest first.")]
IntId = Annotated[int, Path(ge=1, le=MAX_ID)]

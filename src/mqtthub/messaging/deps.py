"""The messaging service as a request dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from mqtthub.messaging.service import MessagingService
from mqtthub.web.state import provide

MessagingDep = Annotated[MessagingService, Depends(provide(MessagingService))]
"""The REST/WebSocket messaging service of the hub serving the request."""

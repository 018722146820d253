"""The one live fan-out (bounded queues, named overflow policies, organization scoping) and its endpoints."""

from mqtthub.realtime.bus import Event, RealtimeBus
from mqtthub.realtime.fanout import FanOut, OverflowPolicy, Subscriber

__all__ = ["Event", "FanOut", "OverflowPolicy", "RealtimeBus", "Subscriber"]

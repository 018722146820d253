"""In-process fan-out of live events to WebSocket and Socket.IO subscribers, scoped by organization."""

from mqtthub.realtime.bus import Event, OverflowPolicy, RealtimeBus, Subscriber

__all__ = ["Event", "OverflowPolicy", "RealtimeBus", "Subscriber"]

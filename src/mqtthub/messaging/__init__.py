"""The REST/WebSocket messaging API: publish, subscribe, history, topics, stats and the live stream.

Every call acts inside the caller's organization namespace (``org/<short_id>/`` inside the
broker); callers see their topics without that prefix.
"""

"""The low kit every HTTP endpoint builds on: the app state, typed dependencies, error mapping, limits, OpenAPI.

It imports no domain: each domain declares its own service dependencies with :func:`mqtthub.web.state.provide`,
and the composition root (``mqtthub.hub``) builds the :class:`~mqtthub.web.state.AppState` they read.
"""

"""Integrations: managed connections to external brokers, event subscriptions and their actions.

``service.IntegrationService`` runs one ``connector.Connector`` per product with an MQTT
configuration; messages trigger event subscriptions whose actions (``actions``) are guarded
by safe ``conditions`` and filled from sandboxed ``templates``. ``endpoints`` serves the API.
"""

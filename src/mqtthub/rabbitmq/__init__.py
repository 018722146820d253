"""RabbitMQ as the hub's broker ("external broker" mode): publishing over AMQP, ingestion from a replicated queue,
subscriptions, client listings and disconnections through the management API, a vhost per organization.

Nothing here knows HTTP endpoints or SQL: the composition root hands in the telemetry sink and the organizations.
"""

from mqtthub.rabbitmq.broker import RabbitBroker, RabbitConfig

__all__ = ["RabbitBroker", "RabbitConfig"]

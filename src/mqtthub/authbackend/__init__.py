"""The hub as the HTTP auth backend of external MQTT brokers (mosquitto-go-auth, EMQX, RabbitMQ); see ``common``."""

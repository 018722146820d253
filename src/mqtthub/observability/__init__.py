"""Observability: Prometheus ``/metrics`` built on the counters each component keeps, and HTTP request metrics.

Components count in plain integers on their hot paths (:class:`mqtthub.broker.stats.BrokerStats`,
the ingest writer, the authenticator, …); :mod:`mqtthub.observability.collector` turns those
counters into Prometheus metric families only when ``/metrics`` is scraped.
"""

"""The ``mqtthub`` command line."""

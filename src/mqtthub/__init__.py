"""mqtthub: everything around MQTT in one install."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mqtthub")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"

__all__ = ["__version__"]

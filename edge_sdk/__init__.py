"""edge-sdk: convert vision models for the edge, run them on vehicle camera streams, report over MQTT."""

__version__ = "0.1.0"

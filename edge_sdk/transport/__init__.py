"""MQTT transport: client wrapper, topic builders, payload schemas and the durable spool. Knows nothing of models or frames."""

"""MQTT transport: client wrapper, topic builders, payload schemas and the durable spool. Knows nothing of models or frames.

Modules: `topics` (topic layout, `MessageKind`, `Priority`), `payloads`
(JSON envelope, escalation request/reply), `config` (`MqttConfig`),
`client` (`MqttClient`), `spool` (`Spool`), `errors`. The user guide with
every topic and payload schema is docs/transport.md.
"""

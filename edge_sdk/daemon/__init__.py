"""The on-vehicle daemon: configuration schema, pipeline, escalation policy, events and status."""

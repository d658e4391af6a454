"""Cloud side: the MaaS worker replying to escalations, and the telemetry subscribers with their storage."""

"""Cloud side: the MaaS worker answering escalations and the telemetry subscribers with their storage."""

"""Convert MQTT 5 PUBLISH properties to and from JSON-safe dicts, so spooled messages keep them.

Only the properties an application sets on a PUBLISH are kept: response
topic, correlation data, content type, payload format indicator, message
expiry interval and user properties. Any other property raises
`PayloadError`, because silently losing it would change what subscribers see.
"""

from __future__ import annotations

from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_sdk.transport.errors import PayloadError

_TEXT = ("ResponseTopic", "ContentType")
_INTEGER = ("PayloadFormatIndicator", "MessageExpiryInterval")
_SUPPORTED = (*_TEXT, *_INTEGER, "CorrelationData", "UserProperty")


def properties_to_dict(properties: Properties | None) -> dict[str, Any] | None:
    """Return the PUBLISH properties as a JSON-safe dict, or None when there are none."""
    if properties is None:
        return None
    data: dict[str, Any] = {}
    for spaced_name in properties.names:
        name = spaced_name.replace(" ", "")
        if not hasattr(properties, name):
            continue
        value = getattr(properties, name)
        if name not in _SUPPORTED:
            raise PayloadError(f"properties.{name}", f"cannot be spooled: only {', '.join(_SUPPORTED)} are kept")
        if name == "CorrelationData":
            data[name] = bytes(value).hex()
        elif name == "UserProperty":
            data[name] = [[str(k), str(v)] for k, v in value]
        else:
            data[name] = value
    return data or None


def properties_from_dict(data: dict[str, Any] | None) -> Properties | None:
    """Rebuild paho `Properties` for a PUBLISH from `properties_to_dict` output."""
    if not data:
        return None
    properties = Properties(PacketTypes.PUBLISH)
    for name, value in data.items():
        if name == "CorrelationData":
            properties.CorrelationData = bytes.fromhex(value)
        elif name == "UserProperty":
            properties.UserProperty = [(k, v) for k, v in value]
        elif name in _TEXT or name in _INTEGER:
            setattr(properties, name, value)
        else:
            raise PayloadError(f"properties.{name}", "is not a PUBLISH property this spool writes: the spool file was written by another program")
    return properties

"""The daemon's configuration: one typed schema, read from TOML or YAML.

`load_config(path)` reads `vehicle.toml` (tomllib) or `vehicle.yaml`
(PyYAML's safe loader) into `DaemonConfig`. Every key is checked; an error
names the dotted key and the value. Relative paths in the file (models,
videos, spool, TLS files) are resolved against the folder of the config file.
`edge_sdk.daemon.check.check_files` checks that those files exist.
`docs/daemon.md` lists every key; `describe_keys()` yields the same list.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk.daemon.errors import DaemonConfigError
from edge_sdk.daemon.schema import KeyDoc, build, describe, setting

SOURCE_KINDS = ("file", "device", "url", "gstreamer")
_KIND_TARGET_KEY = {"file": "path", "device": "device", "url": "url", "gstreamer": "pipeline"}
_KIND_OPTIONS = {
    "file": ("loop", "pace"),
    "device": ("width", "height", "fps", "fourcc"),
    "url": ("rtsp_transport", "open_timeout_s", "read_timeout_s"),
    "gstreamer": (),
}


@dataclass(frozen=True, slots=True)
class TlsSection:
    enabled: bool = setting(False, "Connect with TLS; also turned on by setting ca. Without ca the system's trusted CAs are used.")
    ca: str | None = setting(None, "CA certificate file (PEM) that signed the broker's certificate.", unit="path")
    cert: str | None = setting(None, "Client certificate file (PEM) for mutual TLS.", unit="path")
    key: str | None = setting(None, "Private key file (PEM) of the client certificate.", unit="path")

    def validate(self, path: str) -> None:
        if (self.cert is None) != (self.key is None):
            raise DaemonConfigError(f"{path}.cert and {path}.key must be set together (cert={self.cert!r}, key={self.key!r})", key=f"{path}.cert", value=self.cert)


@dataclass(frozen=True, slots=True)
class QosSection:
    results: int = setting(1, "QoS of per-frame results and summaries.", choices=(0, 1, 2))
    events: int = setting(1, "QoS of object events.", choices=(0, 1, 2))
    status: int = setting(1, "QoS of the retained status record.", choices=(0, 1, 2))
    escalations: int = setting(1, "QoS of frames sent to the cloud.", choices=(0, 1, 2))


@dataclass(frozen=True, slots=True)
class MqttSection:
    host: str = setting("127.0.0.1", "Broker host name or address.")
    port: int = setting(1883, "Broker port (8883 is usual with TLS).", minimum=1, maximum=65535)
    transport: str = setting("tcp", "Socket transport.", choices=("tcp", "websockets"))
    protocol: str = setting("5", "MQTT protocol version.", choices=("5", "3.1.1"))
    client_id: str | None = setting(None, "MQTT client id; unset uses `edge-sdk-{vehicle_id}`.")
    keepalive_s: int = setting(30, "Keepalive interval.", unit="s", minimum=5, maximum=65535)
    username: str | None = setting(None, "User name for the broker.")
    password: str | None = setting(None, "Password for the broker; prefer the EDGE_SDK_MQTT_PASSWORD environment variable.")
    topic_prefix: str = setting("edge", "First topic levels; topics are `{topic_prefix}/{vehicle_id}/{kind}`.")
    clean_start: bool = setting(False, "Start without the broker's stored session; false keeps subscriptions and queued replies across reconnects.")
    session_expiry_s: int = setting(86400, "How long the broker keeps the session after a disconnect (MQTT 5).", unit="s", minimum=0)
    reconnect_min_s: float = setting(1.0, "First wait before reconnecting to the broker; doubles up to reconnect_max_s.", unit="s", minimum=0.01)
    reconnect_max_s: float = setting(30.0, "Longest wait between reconnect attempts.", unit="s", minimum=0.01)
    connect_timeout_s: float = setting(5.0, "Time allowed for one connection attempt.", unit="s", minimum=0.1)
    tls: TlsSection = setting(description="TLS files.", factory=TlsSection)
    qos: QosSection = setting(description="QoS per message kind.", factory=QosSection)

    def validate(self, path: str) -> None:
        key = f"{path}.host"
        if "://" in self.host:
            raise DaemonConfigError(
                f"{key} = {self.host!r} is invalid: give a plain host name or address without a scheme, "
                f"and set the port with {path}.port and TLS with [{path}.tls]",
                key=key,
                value=self.host,
            )
        if _has_port(self.host):
            raise DaemonConfigError(
                f"{key} = {self.host!r} is invalid: give a plain host name or address without a port, and set the port with {path}.port",
                key=key,
                value=self.host,
            )


@dataclass(frozen=True, slots=True)
class SpoolSection:
    path: str = setting("spool.sqlite", "SQLite file of the store-and-forward queue.", unit="path")
    max_messages: int = setting(200_000, "Queue size limit; when full, lower-priority messages are dropped first and counted.", unit="messages", minimum=100)
    max_bytes: int = setting(256 * 1024 * 1024, "Queue size limit in payload bytes, with the same drop order.", unit="bytes", minimum=1_000_000)
    synchronous: str = setting("NORMAL", "SQLite synchronous mode: NORMAL survives a killed process, FULL also a power cut at one fsync per message.", choices=("NORMAL", "FULL"))


@dataclass(frozen=True, slots=True)
class EscalationSection:
    enabled: bool = setting(False, "Send hard frames of this model to the cloud.")
    below_score: float = setting(0.0, "Escalate when the top score is below this value; 0 turns this rule off.", minimum=0.0, maximum=1.0)
    labels: tuple[str, ...] = setting(description="Escalate when one of these labels is in the result.", factory=tuple)
    sample_rate: float = setting(0.0, "Fraction of the other frames escalated at random.", minimum=0.0, maximum=1.0)
    jpeg_quality: int = setting(85, "JPEG quality of the uploaded frame.", minimum=1, maximum=100)
    max_side: int = setting(640, "Longest side of the uploaded frame; larger frames are downscaled.", unit="px", minimum=32)
    timeout_s: float = setting(5.0, "Time after which an request without a reply counts as timed out.", unit="s", minimum=0.1)
    max_pending: int = setting(16, "Requests waiting for a reply at most; further frames are not escalated.", minimum=1)


@dataclass(frozen=True, slots=True)
class ModelSection:
    path: str = setting(description="Model package directory, package archive or bare .tflite file.", unit="path")
    labels: str | None = setting(None, "Labels file, one label a line, for a bare .tflite.", unit="path")
    label_offset: int | None = setting(None, "Labels-file lines before class 0 (1 for COCO files starting with 'unlabeled'); unset lets the runtime decide.", minimum=0)
    task: str | None = setting(None, "Task of a bare .tflite; unset guesses it from the outputs.", choices=("classification", "detection", "segmentation"))
    mean: tuple[float, ...] | None = setting(None, "Per-channel mean subtracted from 0-255 pixels, for a bare float .tflite.")
    std: tuple[float, ...] | None = setting(None, "Per-channel standard deviation dividing the pixels, for a bare float .tflite.")
    score_threshold: float | None = setting(None, "Detections and classes below this score are dropped; unset uses the package's own.", minimum=0.0, maximum=1.0)
    num_threads: int | None = setting(None, "Interpreter threads; unset lets the runtime choose.", minimum=1)
    backend: str | None = setting(None, "Interpreter backend; unset uses EDGE_SDK_BACKEND or the first installed.", choices=("ai_edge_litert", "tflite_runtime", "tensorflow"))
    escalation: EscalationSection = setting(description="Cloud escalation policy of this model.", factory=EscalationSection)


@dataclass(frozen=True, slots=True)
class SourceSection:
    id: str = setting(description="Short unique source id, used in topics' payloads and logs (such as 'front').")
    kind: str = setting(description="Kind of input.", choices=SOURCE_KINDS)
    model: str = setting(description="Name of the entry in [models] that runs on this source; sources may share one.")
    path: str | None = setting(None, "kind=file: video file.", unit="path")
    device: str | None = setting(None, "kind=device: `/dev/videoN` or an index such as '0'.")
    url: str | None = setting(None, "kind=url: rtsp://, rtsps://, http:// or https:// address.")
    pipeline: str | None = setting(None, "kind=gstreamer: pipeline string ending in appsink.")
    loop: bool = setting(False, "kind=file: restart at the end of the file.")
    pace: str = setting("realtime", "kind=file: read speed.", choices=("realtime", "fast", "lockstep"))
    width: int | None = setting(None, "kind=device: requested frame width.", unit="px", minimum=1)
    height: int | None = setting(None, "kind=device: requested frame height.", unit="px", minimum=1)
    fps: float | None = setting(None, "kind=device: requested frame rate.", unit="frames/s", minimum=0.1)
    fourcc: str | None = setting(None, "kind=device: pixel format such as 'MJPG'.")
    rtsp_transport: str = setting("tcp", "kind=url: RTSP transport.", choices=("tcp", "udp"))
    open_timeout_s: float = setting(10.0, "kind=url: FFmpeg open timeout.", unit="s", minimum=0.1)
    read_timeout_s: float = setting(5.0, "kind=url: FFmpeg read timeout.", unit="s", minimum=0.1)
    fps_limit: float = setting(0.0, "Frames per second sent to the model at most; 0 means as many as it keeps up with.", unit="frames/s", minimum=0.0)
    stall_timeout_s: float = setting(5.0, "No frame for this long means the source is lost and is reopened; 0 turns this off.", unit="s", minimum=0.0)
    frozen_timeout_s: float = setting(0.0, "An unchanged image for this long means the source is lost; 0 turns this off.", unit="s", minimum=0.0)
    reopen_initial_s: float = setting(0.5, "First wait before reopening a lost source; doubles after each failure.", unit="s", minimum=0.01)
    reopen_max_s: float = setting(30.0, "Longest wait between reopen attempts.", unit="s", minimum=0.01)
    max_reopen_attempts: int = setting(0, "Failed opens in a row before the source is given up; 0 retries forever.", minimum=0)

    def validate(self, path: str) -> None:
        target_key = _KIND_TARGET_KEY[self.kind]
        if getattr(self, target_key) in (None, ""):
            raise DaemonConfigError(f"{path}.{target_key} is missing: a source of kind {self.kind!r} needs it", key=f"{path}.{target_key}", value=None)
        for other_kind, other_key in _KIND_TARGET_KEY.items():
            if other_kind != self.kind and getattr(self, other_key) is not None:
                raise DaemonConfigError(
                    f"{path}.{other_key} = {getattr(self, other_key)!r} is invalid for kind {self.kind!r}: it belongs to kind {other_kind!r}",
                    key=f"{path}.{other_key}",
                    value=getattr(self, other_key),
                )
        if self.reopen_max_s < self.reopen_initial_s:
            raise DaemonConfigError(
                f"{path}.reopen_max_s = {self.reopen_max_s} is invalid: it must not be below reopen_initial_s ({self.reopen_initial_s})",
                key=f"{path}.reopen_max_s",
                value=self.reopen_max_s,
            )

    def source_options(self, base_dir: Path) -> dict[str, Any]:
        """Return the keyword arguments of the matching `edge_sdk.sources` class."""
        from edge_sdk.sources import LossSettings

        target_key = _KIND_TARGET_KEY[self.kind]
        target: Any = getattr(self, target_key)
        if self.kind == "file":
            target = resolve_path(base_dir, target)
        options: dict[str, Any] = {target_key: target}
        for name in _KIND_OPTIONS[self.kind]:
            options[name] = getattr(self, name)
        options["loss"] = LossSettings(
            stall_timeout_s=self.stall_timeout_s,
            frozen_timeout_s=self.frozen_timeout_s,
            reopen_initial_s=self.reopen_initial_s,
            reopen_max_s=self.reopen_max_s,
            max_reopen_attempts=self.max_reopen_attempts,
        )
        return options


@dataclass(frozen=True, slots=True)
class PublishSection:
    results: str = setting("all", "Which per-frame results are published: every frame, only frames with a detection or top class scoring at least events.min_score, or none. Escalated frames are always published.", choices=("all", "detections", "none"))
    results_every_n: int = setting(1, "Publish the result of every n-th processed frame of a source.", minimum=1)
    events: bool = setting(True, "Publish object events (new, update, end).")
    summary_interval_s: float = setting(60.0, "Period of the summary record (counts per label, frames, mean score); 0 turns it off.", unit="s", minimum=0.0)
    include_vehicle_state: bool = setting(True, "Attach the latest vehicle state (GPS, speed, CAN signals with their age) to results and events when [vehicle] is set.")


@dataclass(frozen=True, slots=True)
class EventsSection:
    labels: tuple[str, ...] = setting(description="Labels tracked for events; empty tracks every label.", factory=tuple)
    min_score: float = setting(0.5, "Detections below this score are not tracked.", minimum=0.0, maximum=1.0)
    iou_threshold: float = setting(0.3, "Minimum intersection over union to match a detection to a tracked object.", minimum=0.01, maximum=1.0)
    min_hits: int = setting(2, "Frames an object must be seen before its 'new' event.", minimum=1)
    max_missed: int = setting(5, "Processed frames without a match before the object's 'end' event.", minimum=1)
    update_interval_s: float = setting(2.0, "Least time between two 'update' events of one object; 0 sends none.", unit="s", minimum=0.0)


@dataclass(frozen=True, slots=True)
class UplinkSection:
    bytes_per_s: int = setting(200_000, "Sustained uplink budget for escalated frames.", unit="bytes/s", minimum=1)
    burst_bytes: int = setting(1_000_000, "Token bucket size: bytes that may go out at once after a quiet period.", unit="bytes", minimum=1)
    bytes_per_day: int = setting(2_000_000_000, "Daily uplink budget for escalated frames (UTC day).", unit="bytes", minimum=1)


ALERT_KINDS = ("generic", "stop_sign", "speed_limit", "pedestrian", "vehicle_ahead", "lane_departure")
ALERT_SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class AlertSection:
    label: str = setting(description="Label whose 'new' event triggers the alert.")
    min_score: float = setting(0.5, "Least score the object reached.", minimum=0.0, maximum=1.0)
    kind: str = setting("generic", "Alert kind sent to the MCU.", choices=ALERT_KINDS)
    severity: str = setting("warning", "Alert severity sent to the MCU.", choices=ALERT_SEVERITIES)
    text_id: int = setting(0, "Id of the text the MCU shows, from the MCU's message table.", minimum=0, maximum=65535)
    cooldown_s: float = setting(10.0, "Least time between two alerts for this label.", unit="s", minimum=0.0)


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    vehicle_id: str = setting(description="Vehicle id, one topic level (no '/', '+', '#').")
    models: dict[str, ModelSection] = setting(description="Models by name; each source names one.")
    sources: tuple[SourceSection, ...] = setting(description="Camera sources.")
    status_interval_s: float = setting(10.0, "Period of the status record.", unit="s", minimum=0.5)
    queue_size: int = setting(8, "Capacity of the queue between inference and publishing; a full queue holds back inference.", unit="results", minimum=1)
    shutdown_timeout_s: float = setting(10.0, "Time allowed on SIGTERM to flush queued results before the rest stays in the spool.", unit="s", minimum=0.0)
    mqtt: MqttSection = setting(description="Broker connection.", factory=MqttSection)
    spool: SpoolSection = setting(description="Store-and-forward queue.", factory=SpoolSection)
    publish: PublishSection = setting(description="What is published and how often.", factory=PublishSection)
    events: EventsSection = setting(description="Object event tracker.", factory=EventsSection)
    uplink: UplinkSection = setting(description="Uplink budget of escalated frames.", factory=UplinkSection)
    vehicle: dict[str, Any] | None = setting(None, "Serial links to GPS, CAN and MCU, passed as is to firmware_bridge.vehicle.VehicleLinks.from_config.")
    alerts: tuple[AlertSection, ...] = setting(description="Driver alerts sent to the MCU on 'new' events.", factory=tuple)
    base_dir: str = setting("", "Folder that relative paths are resolved against; set by the loader to the config file's folder.")

    def validate(self, path: str) -> None:
        if not self.vehicle_id or any(c in self.vehicle_id for c in "/+#"):
            raise DaemonConfigError(f"vehicle_id = {self.vehicle_id!r} is invalid: use a non-empty id without '/', '+' or '#'", key="vehicle_id", value=self.vehicle_id)
        if not self.sources:
            raise DaemonConfigError("sources = [] is invalid: configure at least one [[sources]] entry", key="sources", value=[])
        seen: set[str] = set()
        for index, source in enumerate(self.sources):
            if source.id in seen:
                raise DaemonConfigError(f"sources[{index}].id = {source.id!r} is invalid: source ids must be unique", key=f"sources[{index}].id", value=source.id)
            seen.add(source.id)
            if source.model not in self.models:
                raise DaemonConfigError(
                    f"sources[{index}].model = {source.model!r} is invalid: no such entry in [models] (known: {', '.join(self.models) or 'none'})",
                    key=f"sources[{index}].model",
                    value=source.model,
                )
        if self.alerts and self.vehicle is None:
            raise DaemonConfigError("alerts are configured but [vehicle] is not: alerts go to the MCU link, so add [vehicle.mcu]", key="alerts", value=len(self.alerts))

    @property
    def directory(self) -> Path:
        return Path(self.base_dir or ".")

    def resolve(self, value: str) -> Path:
        """Resolve a path from the config file against the config file's folder."""
        return resolve_path(self.directory, value)


def _has_port(host: str) -> bool:
    """Tell whether a host is written as `name:port` or `[address]:port`; a bare IPv6 address has several colons."""
    if host.startswith("["):
        return "]:" in host
    name, colon, port = host.rpartition(":")
    return bool(colon) and ":" not in name and (port.isdigit() or not port)


def resolve_path(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise DaemonConfigError(f"{path} is not valid TOML: {exc}", key=None, value=None) from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        with path.open("r", encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise DaemonConfigError(f"{path} is not valid YAML: {exc}", key=None, value=None) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DaemonConfigError(f"{path} contains a YAML {type(data).__name__} at the top level, expected a mapping of keys", key=None, value=data)
    return data


def parse_config(data: dict[str, Any], base_dir: Path | str = ".") -> DaemonConfig:
    """Build a DaemonConfig from already-parsed data; relative paths resolve against `base_dir`."""
    if "base_dir" in data:
        raise DaemonConfigError("base_dir is set by the loader and cannot be given in the file: remove it", key="base_dir", value=data["base_dir"])
    return build(DaemonConfig, {**data, "base_dir": str(base_dir)})  # type: ignore[no-any-return]


def load_config(path: str | Path) -> DaemonConfig:
    """Read and check a `.toml`, `.yaml` or `.yml` config file."""
    path = Path(path)
    if not path.is_file():
        raise DaemonConfigError(f"config file {path} not found: pass the path of vehicle.toml or vehicle.yaml with --config", key=None, value=str(path))
    suffix = path.suffix.lower()
    if suffix == ".toml":
        data = _read_toml(path)
    elif suffix in (".yaml", ".yml"):
        data = _read_yaml(path)
    else:
        raise DaemonConfigError(f"config file {path} has suffix {suffix!r}: use .toml, .yaml or .yml", key=None, value=str(path))
    try:
        return parse_config(data, path.resolve().parent)
    except DaemonConfigError as exc:
        raise DaemonConfigError(f"{path}: {exc}", key=exc.key, value=exc.value) from exc


def describe_keys() -> Iterator[KeyDoc]:
    """Yield every config key with its type, default, unit and description (base_dir excluded)."""
    for doc in describe(DaemonConfig):
        if doc.key != "base_dir":
            yield doc

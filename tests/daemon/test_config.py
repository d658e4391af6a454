"""The daemon's config schema: TOML and YAML read the same, and every error names the key and the value."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdk.daemon.config import DaemonConfig, describe_keys, load_config, parse_config
from edge_sdk.daemon.errors import DaemonConfigError
from edge_sdk.errors import ConfigError
from tests.conftest import REPO_ROOT

MINIMAL = {
    "vehicle_id": "car-1",
    "models": {"det": {"path": "detect.tflite"}},
    "sources": [{"id": "front", "kind": "file", "path": "clip.mp4", "model": "det"}],
}

TOML = """
vehicle_id = "car-1"
status_interval_s = 5

[mqtt]
host = "127.0.0.1"
protocol = "3.1.1"

[mqtt.qos]
results = 0

[models.det]
path = "detect.tflite"
labels = "labels.txt"
label_offset = 1

[models.det.escalation]
enabled = true
below_score = 0.4
labels = ["stop sign"]

[[sources]]
id = "front"
kind = "file"
path = "clip.mp4"
model = "det"
fps_limit = 10

[[sources]]
id = "cab"
kind = "device"
device = "/dev/video0"
model = "det"
"""

YAML = """
vehicle_id: car-1
status_interval_s: 5
mqtt:
  host: 127.0.0.1
  protocol: "3.1.1"
  qos: {results: 0}
models:
  det:
    path: detect.tflite
    labels: labels.txt
    label_offset: 1
    escalation: {enabled: true, below_score: 0.4, labels: [stop sign]}
sources:
  - {id: front, kind: file, path: clip.mp4, model: det, fps_limit: 10}
  - {id: cab, kind: device, device: /dev/video0, model: det}
"""


def with_changes(path: str, value: object) -> dict:
    """MINIMAL with the dotted `path` (list items as [i]) set to `value`."""
    data = {"vehicle_id": MINIMAL["vehicle_id"], "models": {"det": dict(MINIMAL["models"]["det"])}, "sources": [dict(s) for s in MINIMAL["sources"]]}
    target = data
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    for part in parts[:-1]:
        target = target[int(part[1:-1])] if part.startswith("[") else target.setdefault(part, {})
    last = parts[-1]
    if last.startswith("["):
        target[int(last[1:-1])] = value
    else:
        target[last] = value
    return data


def test_config_toml_and_yaml_equal(tmp_path: Path) -> None:
    (tmp_path / "vehicle.toml").write_text(TOML)
    (tmp_path / "vehicle.yaml").write_text(YAML)
    from_toml = load_config(tmp_path / "vehicle.toml")
    from_yaml = load_config(tmp_path / "vehicle.yaml")
    assert from_toml == from_yaml
    assert from_toml.mqtt.protocol == "3.1.1"
    assert from_toml.mqtt.qos.results == 0
    assert from_toml.mqtt.qos.events == 1
    assert from_toml.models["det"].escalation.labels == ("stop sign",)
    assert from_toml.sources[0].fps_limit == 10.0
    assert from_toml.sources[1].device == "/dev/video0"


def test_config_defaults_fill_missing_sections() -> None:
    config = parse_config(MINIMAL)
    assert isinstance(config, DaemonConfig)
    assert config.mqtt.port == 1883
    assert config.publish.results == "all"
    assert config.sources[0].pace == "realtime"
    assert config.models["det"].escalation.enabled is False


def test_config_relative_paths_resolve_against_file(tmp_path: Path) -> None:
    (tmp_path / "vehicle.toml").write_text(TOML)
    config = load_config(tmp_path / "vehicle.toml")
    assert config.resolve(config.models["det"].path) == tmp_path / "detect.tflite"
    options = config.sources[0].source_options(config.directory)
    assert options["path"] == tmp_path / "clip.mp4"


BAD_VALUES = [
    ("status_interval_s", "ten", "expected a number"),
    ("status_interval_s", 0.1, "at least 0.5"),
    ("vehicle_id", "car/1", "without '/'"),
    ("sources[0].kind", "webcam", "expected one of"),
    ("sources[0].fps_limit", -2, "at least 0"),
    ("sources[0].pace", "slow", "expected one of"),
    ("sources[0].model", "nope", "no such entry"),
    ("sources[0].loop", "yes", "true or false"),
    ("sources[0].device", "/dev/video0", "belongs to kind 'device'"),
    ("models.det.score_threshold", 1.5, "at most 1.0"),
    ("models.det.escalation.jpeg_quality", 0, "at least 1"),
    ("mqtt.port", 70000, "at most 65535"),
    ("mqtt.protocol", "3", "expected one of"),
    ("mqtt.qos.events", 3, "expected one of"),
    ("publish.results", "some", "expected one of"),
    ("events.iou_threshold", 0, "at least 0.01"),
    ("uplink.bytes_per_s", 0, "at least 1"),
]


@pytest.mark.parametrize(("key", "value", "rule"), BAD_VALUES, ids=[case[0] for case in BAD_VALUES])
def test_config_bad_value_names_key_and_value(key: str, value: object, rule: str) -> None:
    with pytest.raises(DaemonConfigError) as excinfo:
        parse_config(with_changes(key, value))
    message = str(excinfo.value)
    assert excinfo.value.key == key
    assert key in message
    assert repr(float(value) if key.endswith(("_s", "fps_limit")) and isinstance(value, int) else value) in message or repr(value) in message
    assert rule in message


def test_config_unknown_key_suggests_nearest() -> None:
    with pytest.raises(DaemonConfigError, match=r"sources\[0\]\.fps_limt is not a known key: did you mean 'fps_limit'\?"):
        parse_config(with_changes("sources[0].fps_limt", 5))


def test_config_unknown_key_matches_case_first() -> None:
    with pytest.raises(DaemonConfigError, match=r"vehicle_ID is not a known key: did you mean 'vehicle_id'\?"):
        parse_config({**MINIMAL, "vehicle_ID": "car-2"})
    with pytest.raises(DaemonConfigError, match=r"mqtt\.Host is not a known key: did you mean 'host'\?"):
        parse_config(with_changes("mqtt.Host", "broker"))


BAD_HOSTS = [
    ("mqtt://127.0.0.1:1883", "without a scheme"),
    ("mqtts://broker.example.net", "without a scheme"),
    ("127.0.0.1:1883", "without a port"),
    ("broker:8883", "without a port"),
    ("[::1]:1883", "without a port"),
]


@pytest.mark.parametrize(("host", "rule"), BAD_HOSTS)
def test_config_host_with_scheme_or_port_rejected(host: str, rule: str) -> None:
    with pytest.raises(DaemonConfigError) as excinfo:
        parse_config(with_changes("mqtt.host", host))
    message = str(excinfo.value)
    assert excinfo.value.key == "mqtt.host"
    assert repr(host) in message
    assert rule in message
    assert "set the port with mqtt.port" in message


@pytest.mark.parametrize("host", ["broker.example.net", "10.0.0.5", "::1", "fe80::1"])
def test_config_plain_host_accepted(host: str) -> None:
    assert parse_config(with_changes("mqtt.host", host)).mqtt.host == host


def test_config_numeric_protocol_asks_for_string() -> None:
    with pytest.raises(DaemonConfigError) as excinfo:
        parse_config(with_changes("mqtt.protocol", 5))
    message = str(excinfo.value)
    assert excinfo.value.key == "mqtt.protocol"
    assert "mqtt.protocol = 5 is invalid" in message
    assert 'write "5" or "3.1.1" (a string' in message


def test_config_missing_required_key() -> None:
    data = with_changes("sources[0].id", "front")
    del data["sources"][0]["path"]
    with pytest.raises(DaemonConfigError, match=r"sources\[0\]\.path is missing"):
        parse_config(data)
    with pytest.raises(DaemonConfigError, match="vehicle_id is missing"):
        parse_config({k: v for k, v in MINIMAL.items() if k != "vehicle_id"})


def test_config_duplicate_source_id() -> None:
    data = with_changes("sources[0].id", "front")
    data["sources"].append(dict(data["sources"][0]))
    with pytest.raises(DaemonConfigError, match=r"sources\[1\]\.id = 'front' is invalid: source ids must be unique"):
        parse_config(data)


def test_config_error_is_config_error_and_value_error() -> None:
    with pytest.raises(ConfigError):
        parse_config(with_changes("mqtt.port", "x"))
    with pytest.raises(ValueError):
        parse_config(with_changes("mqtt.port", "x"))


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("vehicle.toml", "vehicle_id = \n", "not valid TOML"),
        ("vehicle.yaml", "vehicle_id: [unclosed\n", "not valid YAML"),
        ("vehicle.yaml", "- a list\n", "expected a mapping"),
        ("vehicle.ini", "x=1\n", "use .toml, .yaml or .yml"),
    ],
)
def test_config_unreadable_file(tmp_path: Path, name: str, text: str, expected: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(DaemonConfigError, match=re.escape(expected)):
        load_config(tmp_path / name)


def test_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DaemonConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_cli_bad_config_exits_with_key_and_value(tmp_path: Path) -> None:
    config = tmp_path / "vehicle.toml"
    config.write_text(TOML.replace("fps_limit = 10", 'fps_limit = "fast"'))
    completed = subprocess.run(
        [sys.executable, "-m", "edge_sdk", "run", "--config", str(config)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert completed.returncode == 1
    assert "sources[0].fps_limit = 'fast' is invalid: expected a number" in completed.stderr


def test_docs_list_every_config_key() -> None:
    docs = (REPO_ROOT / "docs" / "daemon.md").read_text()
    missing = [doc.key for doc in describe_keys() if f"`{doc.key}`" not in docs]
    assert not missing, f"docs/daemon.md does not list {missing}: regenerate the table with python -m edge_sdk.daemon.reference"


def test_cli_check_accepts_valid_config(tmp_path: Path, data_dir: Path) -> None:
    config = tmp_path / "vehicle.yaml"
    detection = data_dir / "detection"
    real_paths = YAML.replace("path: detect.tflite", f"path: {detection / 'detect.tflite'}").replace("labels: labels.txt", f"labels: {detection / 'COCO_labels.txt'}")
    config.write_text(real_paths.replace("path: clip.mp4", f"path: {data_dir / 'video' / 'solidWhiteRight.mp4'}"))
    completed = subprocess.run(
        [sys.executable, "-m", "edge_sdk", "run", "--config", str(config), "--check"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    assert "valid (2 sources, 1 models, vehicle car-1)" in completed.stdout


def test_cli_bad_vehicle_section_names_it(tmp_path: Path, data_dir: Path) -> None:
    from tests.broker import free_port
    from tests.daemon.support import write_config

    config = write_config(tmp_path / "vehicle.toml", data_dir, free_port(), spool=tmp_path / "spool.sqlite", extra='[vehicle.gps]\nbaud = 9600\n')
    for extra_args in ([], ["--check"]):
        completed = subprocess.run(
            [sys.executable, "-m", "edge_sdk", "run", "--config", str(config), *extra_args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
        )
        assert completed.returncode == 1, extra_args
        assert "vehicle: " in completed.stderr
        assert "baud" in completed.stderr
        assert "Traceback" not in completed.stderr

import json

import pytest

from edge_sdk.package import InputSpec, Manifest, ManifestError


def make_manifest(**overrides):
    values = dict(
        name="mobilenet",
        version="1",
        task="classification",
        input=InputSpec(shape=(1, 224, 224, 3), dtype="uint8", scale=1 / 128, zero_point=128),
    )
    values.update(overrides)
    return Manifest(**values)


def test_manifest_round_trips_through_json(tmp_path):
    manifest = make_manifest()
    manifest.write(tmp_path)
    assert Manifest.read(tmp_path / "manifest.json") == manifest


def test_manifest_rejects_unknown_major_version():
    data = make_manifest().to_dict()
    data["schema_version"] = "2.0"
    with pytest.raises(ManifestError, match="schema_version 2.0 is not supported"):
        Manifest.from_dict(data)


def test_manifest_accepts_newer_minor_version():
    data = make_manifest().to_dict()
    data["schema_version"] = "1.7"
    data["field_from_the_future"] = 1
    assert Manifest.from_dict(data).name == "mobilenet"


def test_manifest_error_names_key_and_value():
    data = make_manifest().to_dict()
    data["input"]["resize"] = "squash"
    with pytest.raises(ManifestError, match="input.resize is 'squash'"):
        Manifest.from_dict(data)


def test_manifest_rejects_quantized_input_without_scale():
    with pytest.raises(ManifestError, match="needs a positive scale"):
        make_manifest(input=InputSpec(shape=(1, 8, 8, 3), dtype="int8")).validate()


def test_manifest_rejects_path_escaping_package():
    with pytest.raises(ManifestError, match="plain file name"):
        make_manifest(model_file="../model.tflite").validate()


def test_manifest_reports_invalid_json(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.read(path)


def test_manifest_reports_missing_key():
    data = make_manifest().to_dict()
    del data["input"]
    with pytest.raises(ManifestError, match="missing the required key 'input'"):
        Manifest.from_dict(json.loads(json.dumps(data)))

"""Check the files a daemon config refers to, without loading a model or touching the network.

`check_files(config)` returns one `DaemonConfigError` per problem, each
naming the key, the value and what to do. It covers model files and
packages, labels files, file sources, the spool folder, the TLS files and the
DBC file of `[vehicle.can]`. `edge-sdk run --check` prints them all at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from edge_sdk.daemon.config import DaemonConfig
from edge_sdk.daemon.errors import DaemonConfigError
from edge_sdk.errors import EdgeSdkError


def check_files(config: DaemonConfig) -> list[DaemonConfigError]:
    """Return an error for every referenced file that is missing, unreadable or not what the key needs."""
    return [*_check_models(config), *_check_sources(config), *_check_spool(config), *_check_tls(config), *_check_vehicle(config)]


def _missing(key: str, value: str, path: Path, file_kind: str, fix: str) -> DaemonConfigError:
    return DaemonConfigError(f"{key} = {value!r} is invalid: {file_kind} {path} not found: {fix}", key=key, value=value)


def _check_readable_file(key: str, value: str, path: Path, file_kind: str, fix: str) -> DaemonConfigError | None:
    if path.is_dir():
        return DaemonConfigError(f"{key} = {value!r} is invalid: {path} is a directory, expected a {file_kind}: {fix}", key=key, value=value)
    if not path.is_file():
        return _missing(key, value, path, file_kind, fix)
    if not os.access(path, os.R_OK):
        return DaemonConfigError(f"{key} = {value!r} is invalid: {file_kind} {path} is not readable by this user: fix its permissions", key=key, value=value)
    return None


def _check_models(config: DaemonConfig) -> Iterator[DaemonConfigError]:
    for name, section in config.models.items():
        key = f"models.{name}.path"
        path = config.resolve(section.path)
        problem = _check_model_path(path)
        if problem is not None:
            yield DaemonConfigError(f"{key} = {section.path!r} is invalid: {problem}", key=key, value=section.path)
        if section.labels is not None:
            labels_key = f"models.{name}.labels"
            error = _check_readable_file(labels_key, section.labels, config.resolve(section.labels), "labels file", "give the labels file of the model, one label a line")
            if error is not None:
                yield error


def _check_model_path(path: Path) -> str | None:
    """Return what is wrong with a model path, or None.

    A bare `.tflite` file and a package directory are read and checked in full
    (FlatBuffer structure, manifest and model hash).
    NOTE: a package archive is only checked to exist, because checking it means extracting it.
    """
    from edge_sdk.runtime.loading import is_package
    from edge_sdk.runtime.model_file import read_model_info

    if not path.exists():
        return f"model {path} not found: give a .tflite file, a package directory or a package archive, or deploy the model first"
    try:
        if path.is_dir():
            from edge_sdk.package.archive import open_package

            directory, manifest = open_package(path)
            read_model_info(directory / manifest.model_file)
        elif not is_package(path):
            read_model_info(path)
    except EdgeSdkError as exc:
        return str(exc)
    return None


def _check_sources(config: DaemonConfig) -> Iterator[DaemonConfigError]:
    for index, source in enumerate(config.sources):
        if source.kind != "file" or source.path is None:
            continue
        key = f"sources[{index}].path"
        error = _check_readable_file(key, source.path, config.resolve(source.path), "video file", "give the path of a video file OpenCV can decode")
        if error is not None:
            yield error


def _check_spool(config: DaemonConfig) -> Iterator[DaemonConfigError]:
    key = "spool.path"
    value = config.spool.path
    path = config.resolve(value)
    if path.is_dir():
        yield DaemonConfigError(f"{key} = {value!r} is invalid: {path} is a directory: give a file name such as {path / 'spool.sqlite'}", key=key, value=value)
        return
    if path.exists():
        # WAL mode writes a -wal and a -shm file next to the spool, so its folder must be writable too.
        if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
            yield DaemonConfigError(
                f"{key} = {value!r} is invalid: {path} or its folder is not writable by this user: fix their permissions",
                key=key,
                value=value,
            )
        return
    # The spool creates missing folders, so the nearest existing ancestor must be writable.
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        yield DaemonConfigError(f"{key} = {value!r} is invalid: {ancestor} is a file, so the spool folder cannot be created: choose another path", key=key, value=value)
    elif not os.access(ancestor, os.W_OK | os.X_OK):
        yield DaemonConfigError(
            f"{key} = {value!r} is invalid: folder {ancestor} is not writable by this user, so {path} cannot be created: "
            "choose a writable folder or fix its permissions",
            key=key,
            value=value,
        )


def _check_tls(config: DaemonConfig) -> Iterator[DaemonConfigError]:
    tls = config.mqtt.tls
    for name in ("ca", "cert", "key"):
        value = getattr(tls, name)
        if value is None:
            continue
        error = _check_readable_file(f"mqtt.tls.{name}", value, config.resolve(value), "PEM file", "give the path of the PEM file or remove the key")
        if error is not None:
            yield error


def _check_vehicle(config: DaemonConfig) -> Iterator[DaemonConfigError]:
    can = (config.vehicle or {}).get("can")
    if not isinstance(can, dict) or not isinstance(can.get("dbc"), str):
        return
    value = can["dbc"]
    # firmware_bridge gets [vehicle] unchanged, so a relative DBC path resolves against the working folder.
    error = _check_readable_file("vehicle.can.dbc", value, Path(value).expanduser(), "DBC file", "give the DBC file that describes the CAN bus")
    if error is not None:
        yield error

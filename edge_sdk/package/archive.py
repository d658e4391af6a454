"""Write model packages, pack them into one file and open them safely.

A package directory contains the model file, `manifest.json` and the labels file
side by side, with no subfolders. The single-file form is a tar archive
(gzip-compressed for `.tar.gz`/`.tgz`) or a zip archive (`.zip`) of those
files. Opening a package checks the manifest schema and the model's sha256,
and extraction rejects absolute paths, `..` components, links, special files
and members over a size limit, so an archive from the network cannot write
outside its target folder or fill the disk.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import IO

from edge_sdk import __version__
from edge_sdk.package.errors import ManifestError, PackageError
from edge_sdk.package.manifest import MANIFEST_FILENAME, Manifest

logger = logging.getLogger(__name__)

# Limits for extraction: one member and the sum of all members, in bytes.
MAX_MEMBER_BYTES = 1 << 30
MAX_TOTAL_BYTES = 2 << 30
MAX_MEMBERS = 64

_CHUNK_BYTES = 1 << 20


class UnsafeArchiveError(PackageError, ValueError):
    """An archive member has an absolute path, a `..` component, is a link or special file, or is too large."""


class PackageHashError(PackageError, ValueError):
    """The model file's sha256 differs from the one recorded in the manifest."""


def sha256_file(path: str | Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_package(
    directory: str | Path,
    manifest: Manifest,
    model_bytes: bytes,
    labels: Iterable[str] | None,
) -> Path:
    """Write a package directory: the model, the labels (one per line) and `manifest.json`.

    The manifest is written with the model's sha256 and, when it has none,
    `created_by` set to this edge-sdk version. Returns the directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    labels_list = None if labels is None else [str(label) for label in labels]
    if labels_list is not None and manifest.labels_file is None:
        raise ManifestError("labels were given but manifest.labels_file is None: set labels_file or pass labels=None")
    if labels_list is None and manifest.labels_file is not None:
        manifest = replace(manifest, labels_file=None)
    for label in labels_list or ():
        if "\n" in label or "\r" in label:
            raise ManifestError(f"label {label!r} contains a line break: the labels file has one label per line")

    manifest = replace(
        manifest,
        model_sha256=hashlib.sha256(model_bytes).hexdigest(),
        created_by=manifest.created_by or f"edge-sdk {__version__}",
    )
    manifest.validate()
    (directory / manifest.model_file).write_bytes(model_bytes)
    if labels_list is not None and manifest.labels_file is not None:
        (directory / manifest.labels_file).write_text("".join(f"{label}\n" for label in labels_list), encoding="utf-8")
    manifest.write(directory)
    logger.info("wrote model package %s (%s %s, %d bytes)", directory, manifest.name, manifest.version, len(model_bytes))
    return directory


def pack_archive(directory: str | Path, archive_path: str | Path) -> Path:
    """Pack a package directory into one file: zip for `.zip`, gzip tar for `.tar.gz`/`.tgz`, else plain tar.

    Only the files the manifest names are packed, at the top level of the archive.
    """
    directory = Path(directory)
    archive_path = Path(archive_path)
    manifest = verify_package_dir(directory)
    names = [MANIFEST_FILENAME, manifest.model_file] + ([manifest.labels_file] if manifest.labels_file else [])
    archive_path.parent.mkdir(parents=True, exist_ok=True)
    suffixes = "".join(archive_path.suffixes[-2:]).lower()
    if archive_path.suffix.lower() == ".zip":
        with zipfile.ZipFile(archive_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in names:
                archive.write(directory / name, arcname=name)
    else:
        mode = "w:gz" if suffixes.endswith((".tar.gz", ".tgz")) else "w"
        with tarfile.open(archive_path, mode) as archive:
            for name in names:
                archive.add(directory / name, arcname=name, recursive=False, filter=_normalize_tar_info)
    logger.info("packed %s into %s", directory, archive_path)
    return archive_path


def open_package(
    path: str | Path,
    extract_dir: str | Path | None = None,
    *,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> tuple[Path, Manifest]:
    """Open a package directory or archive, verifying its schema version and model hash.

    An archive is extracted into `extract_dir`, or into a new temporary
    directory that the caller owns and should delete (for example with
    `shutil.rmtree`) when done. Returns the directory and the manifest.
    """
    path = Path(path)
    if path.is_dir():
        return path, verify_package_dir(path)
    if not path.is_file():
        raise PackageError(f"model package {path} not found: give a package directory or archive (.tar.gz, .tgz, .tar, .zip)")

    target = Path(extract_dir) if extract_dir is not None else Path(tempfile.mkdtemp(prefix="edge-sdk-package-"))
    try:
        target.mkdir(parents=True, exist_ok=True)
        extract_archive(path, target, max_member_bytes=max_member_bytes, max_total_bytes=max_total_bytes)
        return target, verify_package_dir(target)
    except BaseException:
        if extract_dir is None:
            shutil.rmtree(target, ignore_errors=True)
        raise


def verify_package_dir(directory: str | Path) -> Manifest:
    """Read `manifest.json` of a package directory and check that its files exist and the model hash matches."""
    directory = Path(directory)
    manifest = Manifest.read(directory / MANIFEST_FILENAME)
    model_path = directory / manifest.model_file
    if not model_path.is_file():
        raise PackageError(f"{model_path} not found: the manifest names model_file {manifest.model_file!r}; rebuild the package")
    if manifest.labels_file is not None and not (directory / manifest.labels_file).is_file():
        raise PackageError(
            f"{directory / manifest.labels_file} not found: the manifest names labels_file {manifest.labels_file!r}; rebuild the package"
        )
    if not manifest.model_sha256:
        raise PackageError(f"{directory / MANIFEST_FILENAME} has no model_sha256: rebuild the package with write_package or `edge-sdk convert`")
    actual = sha256_file(model_path)
    if actual != manifest.model_sha256.lower():
        raise PackageHashError(
            f"{model_path} has sha256 {actual} but the manifest records {manifest.model_sha256}: "
            "the model file is corrupt or was replaced; copy the package again or rebuild it"
        )
    return manifest


def extract_archive(
    archive_path: str | Path,
    target: str | Path,
    *,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> list[Path]:
    """Extract the regular files of a tar or zip archive into `target`, checking every member first.

    Raises UnsafeArchiveError before writing anything when a member is unsafe
    by its header, and while writing when a member grows past the limit.
    """
    archive_path = Path(archive_path)
    target = Path(target)
    if _is_tar(archive_path):
        opener = _open_tar_members
    elif zipfile.is_zipfile(archive_path):
        opener = _open_zip_members
    else:
        raise PackageError(f"{archive_path} is neither a tar nor a zip archive: give a package directory or an archive from pack_archive")
    with opener(archive_path) as members:
        checked = _check_members(archive_path, members, max_member_bytes, max_total_bytes)
        written = []
        total = 0
        for name, _size, read in checked:
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                total += _copy_limited(archive_path, name, read(), destination, max_member_bytes, max_total_bytes - total)
            except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise PackageError(f"{archive_path} member {name!r} cannot be read ({exc}): the archive is damaged; copy it again") from exc
            written.append(destination)
    return written


_Member = tuple[str, str, int, Callable[[], IO[bytes]]]


def _check_members(
    archive_path: Path, members: Iterator[_Member], max_member_bytes: int, max_total_bytes: int
) -> list[tuple[str, int, Callable[[], IO[bytes]]]]:
    checked = []
    total = 0
    members = list(members)
    if len(members) > MAX_MEMBERS:
        raise UnsafeArchiveError(f"{archive_path} has {len(members)} members, more than {MAX_MEMBERS}: a model package has three files")
    for member in members:
        name, kind, size, read = member
        _check_member_name(archive_path, name)
        if kind == "dir":
            continue
        if kind != "file":
            raise UnsafeArchiveError(f"{archive_path} member {name!r} is a {kind}: packages may contain only regular files")
        if size > max_member_bytes:
            raise UnsafeArchiveError(f"{archive_path} member {name!r} is {size} bytes, over the limit of {max_member_bytes} bytes")
        total += size
        if total > max_total_bytes:
            raise UnsafeArchiveError(f"{archive_path} members add up to more than {max_total_bytes} bytes: the archive is too large to extract")
        checked.append((name, size, read))
    return checked


def _check_member_name(archive_path: Path, name: str) -> None:
    posix = PurePosixPath(name.replace("\\", "/"))
    if not name or posix.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive_path} member {name!r} has an absolute path: packages use relative names only")
    if ".." in posix.parts:
        raise UnsafeArchiveError(f"{archive_path} member {name!r} contains '..': it would be written outside the target folder")


def _copy_limited(archive_path: Path, name: str, source: IO[bytes], destination: Path, limit: int, remaining_total: int) -> int:
    copied = 0
    with source, open(destination, "wb") as output:
        for chunk in iter(lambda: source.read(_CHUNK_BYTES), b""):
            copied += len(chunk)
            if copied > limit or copied > remaining_total:
                raise UnsafeArchiveError(
                    f"{archive_path} member {name!r} grew past {min(limit, remaining_total)} bytes while extracting: "
                    "its header understates its size; do not use this archive"
                )
            output.write(chunk)
    return copied


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


class _open_tar_members:
    """Context manager yielding (name, kind, size, opener) for each tar member."""

    _KINDS = ((tarfile.TarInfo.isfile, "file"), (tarfile.TarInfo.isdir, "dir"), (tarfile.TarInfo.issym, "symbolic link"),
              (tarfile.TarInfo.islnk, "hard link"))

    def __init__(self, path: Path) -> None:
        self._path = path
        self._tar: tarfile.TarFile | None = None

    def __enter__(self) -> Iterator[_Member]:
        try:
            self._tar = tarfile.open(self._path, "r:*")
            infos = self._tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            self.__exit__(None, None, None)
            raise PackageError(f"{self._path} is a damaged tar archive ({exc}): copy the package again") from exc
        return iter([(info.name, self._kind(info), info.size, self._reader(info)) for info in infos])

    def __exit__(self, *exc_info: object) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def _kind(self, info: tarfile.TarInfo) -> str:
        for test, kind in self._KINDS:
            if test(info):
                return kind
        return "special file"

    def _reader(self, info: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
        def read() -> IO[bytes]:
            assert self._tar is not None
            stream = self._tar.extractfile(info)
            if stream is None:
                raise UnsafeArchiveError(f"{self._path} member {info.name!r} has no data: packages may contain only regular files")
            return stream

        return read


class _open_zip_members:
    """Context manager yielding (name, kind, size, opener) for each zip member."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._zip: zipfile.ZipFile | None = None

    def __enter__(self) -> Iterator[_Member]:
        try:
            self._zip = zipfile.ZipFile(self._path)
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise PackageError(f"{self._path} is a damaged zip archive ({exc}): copy the package again") from exc
        return iter([(info.filename, self._kind(info), info.file_size, self._reader(info)) for info in infos])

    def __exit__(self, *exc_info: object) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    @staticmethod
    def _kind(info: zipfile.ZipInfo) -> str:
        if info.is_dir():
            return "dir"
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:
            return "symbolic link"
        if mode not in (0, 0o100000):
            return "special file"
        return "file"

    def _reader(self, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
        def read() -> IO[bytes]:
            assert self._zip is not None
            return self._zip.open(info)

        return read


def _normalize_tar_info(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Drop owner names and ids so the archive does not leak the build machine's accounts."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info

import hashlib
import io
import json
import os
import tarfile
import zipfile

import pytest

from edge_sdk.package import InputSpec, Manifest, ManifestError, PackageError
from edge_sdk.package.archive import (
    PackageHashError,
    UnsafeArchiveError,
    open_package,
    pack_archive,
    write_package,
)

MODEL_BYTES = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 4


def make_manifest(**overrides):
    values = dict(
        name="colors",
        version="3",
        task="classification",
        input=InputSpec((1, 32, 32, 3), "uint8", mean=(128.0,), std=(128.0,), scale=1 / 128, zero_point=128),
    )
    values.update(overrides)
    return Manifest(**values)


@pytest.fixture
def package_dir(tmp_path):
    return write_package(tmp_path / "package", make_manifest(), MODEL_BYTES, ["red", "green", "blue"])


def tar_with(path, members):
    """Write a tar whose members are (TarInfo, bytes or None)."""
    with tarfile.open(path, "w") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_info(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def valid_members(package_dir):
    return [file_info(name, (package_dir / name).read_bytes()) for name in ("manifest.json", "model.tflite", "labels.txt")]


def test_write_package_records_hash_and_labels(package_dir):
    manifest = Manifest.read(package_dir / "manifest.json")
    assert manifest.model_sha256 == hashlib.sha256(MODEL_BYTES).hexdigest()
    assert manifest.created_by.startswith("edge-sdk ")
    assert (package_dir / "labels.txt").read_text(encoding="utf-8") == "red\ngreen\nblue\n"
    assert (package_dir / "model.tflite").read_bytes() == MODEL_BYTES


@pytest.mark.parametrize("archive_name", ["colors.tar.gz", "colors.tgz", "colors.tar", "colors.zip"])
def test_archive_round_trip(package_dir, tmp_path, archive_name):
    archive = pack_archive(package_dir, tmp_path / archive_name)
    directory, manifest = open_package(archive, tmp_path / "extracted")
    assert manifest == Manifest.read(package_dir / "manifest.json")
    assert sorted(p.name for p in directory.iterdir()) == ["labels.txt", "manifest.json", "model.tflite"]
    assert (directory / "model.tflite").read_bytes() == MODEL_BYTES


def test_open_package_without_target_makes_temporary_dir(package_dir, tmp_path):
    archive = pack_archive(package_dir, tmp_path / "colors.tar.gz")
    directory, _ = open_package(archive)
    try:
        assert directory.is_dir()
        assert directory != package_dir
    finally:
        import shutil

        shutil.rmtree(directory)


def test_open_package_rejects_hash_mismatch(package_dir):
    (package_dir / "model.tflite").write_bytes(MODEL_BYTES + b"tampered")
    with pytest.raises(PackageHashError, match="sha256") as info:
        open_package(package_dir)
    assert "model.tflite" in str(info.value)


def test_open_package_rejects_unknown_schema_major(package_dir):
    data = json.loads((package_dir / "manifest.json").read_text(encoding="utf-8"))
    data["schema_version"] = "2.0"
    (package_dir / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ManifestError, match="schema_version 2.0 is not supported"):
        open_package(package_dir)


def test_open_package_rejects_missing_labels_file(package_dir):
    (package_dir / "labels.txt").unlink()
    with pytest.raises(PackageError, match="labels.txt not found"):
        open_package(package_dir)


def test_open_package_rejects_missing_path(tmp_path):
    with pytest.raises(PackageError, match="not found"):
        open_package(tmp_path / "nothing.tar.gz")


def test_open_package_rejects_non_archive_file(tmp_path):
    path = tmp_path / "notes.tar.gz"
    path.write_text("just text", encoding="utf-8")
    with pytest.raises(PackageError, match="neither a tar nor a zip"):
        open_package(path, tmp_path / "out")


@pytest.mark.parametrize("name", ["/etc/evil.txt", "../evil.txt", "sub/../../evil.txt"])
def test_tar_extraction_rejects_escaping_names(package_dir, tmp_path, name):
    archive = tar_with(tmp_path / "evil.tar", valid_members(package_dir) + [file_info(name, b"x")])
    target = tmp_path / "out" / "inner"
    with pytest.raises(UnsafeArchiveError, match="absolute path|contains '..'"):
        open_package(archive, target)
    assert not (tmp_path / "out" / "evil.txt").exists()
    assert not (target / "manifest.json").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_tar_extraction_rejects_links(package_dir, tmp_path, kind):
    link = tarfile.TarInfo("labels.txt")
    link.type = kind
    link.linkname = "/etc/passwd"
    members = valid_members(package_dir)[:2] + [(link, None)]
    archive = tar_with(tmp_path / "link.tar", members)
    with pytest.raises(UnsafeArchiveError, match="link"):
        open_package(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "labels.txt").exists()


def test_tar_extraction_rejects_device_files(package_dir, tmp_path):
    device = tarfile.TarInfo("model.tflite")
    device.type = tarfile.CHRTYPE
    archive = tar_with(tmp_path / "device.tar", [(device, None)])
    with pytest.raises(UnsafeArchiveError, match="special file"):
        open_package(archive, tmp_path / "out")


def test_zip_extraction_rejects_symlink(package_dir, tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as output:
        for name in ("manifest.json", "model.tflite"):
            output.write(package_dir / name, arcname=name)
        info = zipfile.ZipInfo("labels.txt")
        info.external_attr = (0o120777 << 16)
        output.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        open_package(archive, tmp_path / "out")


def test_zip_extraction_rejects_parent_paths(package_dir, tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as output:
        output.writestr("../evil.txt", "x")
    with pytest.raises(UnsafeArchiveError, match="contains '..'"):
        open_package(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_extraction_rejects_oversized_member(package_dir, tmp_path):
    archive = pack_archive(package_dir, tmp_path / "colors.tar.gz")
    with pytest.raises(UnsafeArchiveError, match="over the limit of 100 bytes"):
        open_package(archive, tmp_path / "out", max_member_bytes=100)


def test_zip_extraction_rejects_oversized_member(package_dir, tmp_path):
    archive = pack_archive(package_dir, tmp_path / "colors.zip")
    limit = len(MODEL_BYTES) - 1
    with pytest.raises(UnsafeArchiveError, match=f"'model.tflite' is {len(MODEL_BYTES)} bytes"):
        open_package(archive, tmp_path / "out", max_member_bytes=limit)
    assert not (tmp_path / "out" / "model.tflite").exists()


def test_extraction_rejects_archives_over_total_limit(package_dir, tmp_path):
    archive = pack_archive(package_dir, tmp_path / "colors.zip")
    total = sum(os.path.getsize(package_dir / name) for name in ("manifest.json", "model.tflite", "labels.txt"))
    with pytest.raises(UnsafeArchiveError, match="add up to more than"):
        open_package(archive, tmp_path / "out", max_total_bytes=total - 1)


def test_pack_archive_rejects_package_with_bad_hash(package_dir, tmp_path):
    (package_dir / "model.tflite").write_bytes(b"other")
    with pytest.raises(PackageHashError):
        pack_archive(package_dir, tmp_path / "colors.tar.gz")


def test_write_package_rejects_multiline_label(tmp_path):
    with pytest.raises(ManifestError, match="line break"):
        write_package(tmp_path / "package", make_manifest(), MODEL_BYTES, ["red\nblue"])

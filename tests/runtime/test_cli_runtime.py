import json
import subprocess
import sys

import cv2

from edge_sdk.cli import main
from tests.conftest import REPO_ROOT


def test_predict_json_prints_one_line_per_image(coral_dir, capsys):
    code = main(["predict", str(coral_dir / "mobilenet_v2_1.0_224_quant.tflite"), str(coral_dir / "parrot.jpg"),
                 str(coral_dir / "cat.bmp"), "--labels", str(coral_dir / "imagenet_labels.txt"), "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["classifications"][0]["label"] == "macaw"
    assert second["classifications"][0]["label"] == "Egyptian cat"
    assert first["image"].endswith("parrot.jpg")


def test_predict_text_lists_detections(detection_dir, capsys):
    code = main(["predict", str(detection_dir / "detect.tflite"), str(detection_dir / "road_stills" / "solidWhiteCurve.jpg"),
                 "--labels", str(detection_dir / "COCO_labels.txt")])
    out = capsys.readouterr().out
    assert code == 0
    assert "car (class 2)" in out
    assert "box [" in out


def test_predict_unreadable_image_is_an_error(coral_dir, tmp_path, capsys):
    missing = tmp_path / "missing.jpg"
    code = main(["predict", str(coral_dir / "mobilenet_v2_1.0_224_quant.tflite"), str(missing)])
    assert code == 1
    assert "missing.jpg cannot be read" in capsys.readouterr().err


def test_inspect_json_lists_tensors_and_ops(coral_dir, capsys):
    code = main(["inspect", str(coral_dir / "mobilenet_v2_1.0_224_quant.tflite"), "--json"])
    description = json.loads(capsys.readouterr().out)
    assert code == 0
    assert description["inputs"][0]["dtype"] == "uint8"
    assert description["inputs"][0]["quantization"] == {"scale": 0.0078125, "zero_point": 128}
    assert description["size_bytes"] == (coral_dir / "mobilenet_v2_1.0_224_quant.tflite").stat().st_size
    assert description["operators"]["CONV_2D"] > 10
    assert "DELEGATE" not in description["operators"]


def test_inspect_edgetpu_model_shows_file_facts(coral_dir, capsys):
    code = main(["inspect", str(coral_dir / "mobilenet_v1_0.25_128_quant_edgetpu.tflite")])
    out = capsys.readouterr().out
    assert code == 0
    assert "edgetpu-custom-op" in out
    assert "compiled for the Edge TPU" in out


def test_inspect_text_file_fails_cleanly(tmp_path, capsys):
    path = tmp_path / "notes.tflite"
    path.write_text("not a model", encoding="utf-8")
    assert main(["inspect", str(path)]) == 1
    assert "not a TFLite model" in capsys.readouterr().err


def test_bench_json_reports_medians_and_overhead(models_dir, coral_dir):
    completed = subprocess.run(
        [sys.executable, "-m", "edge_sdk", "bench", str(models_dir / "dominant_color_uint8_zp128.tflite"),
         "--image", str(coral_dir / "parrot.jpg"), "--rounds", "20", "--warmup", "2", "--json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(completed.stdout)
    assert report["rounds"] == 20
    for key in ("bare_invoke", "predict", "bare_invoke_after_frame_read", "predict_after_frame_write"):
        assert report[key]["median_ms"] > 0
        assert report[key]["p99_ms"] >= report[key]["median_ms"]
    assert report["overhead_ms"] == report["predict"]["median_ms"] - report["bare_invoke"]["median_ms"]
    fresh = report["predict_after_frame_write"]["median_ms"] - report["bare_invoke_after_frame_read"]["median_ms"]
    assert report["fresh_frame_overhead_ms"] == fresh
    assert report["added_work_ms"] > 0
    assert report["fast_path"] is True
    height, width = cv2.imread(str(coral_dir / "parrot.jpg")).shape[:2]
    assert report["frame_size"] == [width, height]

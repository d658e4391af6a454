import numpy as np
import pytest

from edge_sdk.runtime import Model


@pytest.fixture
def segmenter(models_dir):
    with Model.load(models_dir / "dominant_color_seg.tflite", labels=models_dir / "dominant_color_labels.txt", mean=128, std=128) as model:
        yield model


def split_frame(height=64, width=96):
    """Left third red, middle third green, right third blue (BGR)."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    third = width // 3
    frame[:, :third, 2] = 220
    frame[:, third : 2 * third, 1] = 220
    frame[:, 2 * third :, 0] = 220
    return frame


def test_segmentation_mask_and_fractions(segmenter):
    result = segmenter.predict(split_frame())
    assert segmenter.manifest.task == "segmentation"
    mask = result.segmentation.mask
    assert mask.shape == (32, 32)
    assert mask[16, 2] == 0
    assert mask[16, 16] == 1
    assert mask[16, 30] == 2
    fractions = result.segmentation.class_fractions
    assert set(fractions) == {"red", "green", "blue"}
    assert sum(fractions.values()) == pytest.approx(1.0)
    for label in ("red", "green", "blue"):
        assert fractions[label] == pytest.approx(1 / 3, abs=0.05)


def test_segmentation_fractions_skip_letterbox_bars(models_dir):
    frame = np.zeros((40, 160, 3), dtype=np.uint8)
    frame[..., 2] = 220  # all red, wide frame: letterbox adds black bars
    with Model.load(models_dir / "dominant_color_seg.tflite", labels=models_dir / "dominant_color_labels.txt",
                    mean=128, std=128, resize="letterbox") as model:
        fractions = model.predict(frame).segmentation.class_fractions
    assert fractions == {"red": 1.0}


def test_segmentation_json_has_fractions_only(segmenter):
    data = segmenter.predict(split_frame()).to_dict()
    assert "class_fractions" in data["segmentation"]
    assert "mask" not in data["segmentation"]


def test_predict_batch_matches_predict(models_dir):
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8) for _ in range(4)]
    frames[1][..., 1] = 250
    with Model.load(models_dir / "dominant_color_uint8_zp128.tflite", labels=models_dir / "dominant_color_labels.txt") as model:
        assert model.supports_batch
        batched = model.predict_batch(frames)
        single = [model.predict(frame) for frame in frames]
    assert [r.extra["batch_size"] for r in batched] == [4, 4, 4, 4]
    for one, many in zip(single, batched):
        assert [c.class_id for c in one.classifications] == [c.class_id for c in many.classifications]
        assert one.top.score == pytest.approx(many.top.score, abs=1e-6)


def test_predict_batch_loops_for_fixed_batch(detection_dir):
    frame = np.zeros((60, 80, 3), dtype=np.uint8)
    with Model.load(detection_dir / "detect.tflite", labels=detection_dir / "COCO_labels.txt") as model:
        assert not model.supports_batch
        results = model.predict_batch([frame, frame])
    assert len(results) == 2
    assert all(r.task == "detection" for r in results)


def test_predict_batch_empty_returns_empty(models_dir):
    with Model.load(models_dir / "dominant_color_uint8_zp128.tflite") as model:
        assert model.predict_batch([]) == []


def test_predict_from_threads_matches_sequential(models_dir):
    import threading

    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, size=(30 + i, 40, 3), dtype=np.uint8) for i in range(8)]
    with Model.load(models_dir / "dominant_color_uint8_zp128.tflite", labels=models_dir / "dominant_color_labels.txt") as model:
        expected = [model.predict(frame).top for frame in frames]
        results: dict[tuple[int, int], object] = {}

        def worker(thread_id: int) -> None:
            for index, frame in enumerate(frames):
                results[(thread_id, index)] = model.predict(frame).top

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    for (thread_id, index), top in results.items():
        assert top.class_id == expected[index].class_id
        assert top.score == pytest.approx(expected[index].score)
    assert len(results) == 4 * len(frames)

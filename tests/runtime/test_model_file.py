import pytest

from edge_sdk.runtime.model_file import read_model_info
from edge_sdk.runtime.inspection import describe_model

REAL_MODELS = [
    "coral/mobilenet_v2_1.0_224_quant.tflite",
    "coral/mobilenet_v1_0.25_128_quant.tflite",
    "detection/detect.tflite",
]


@pytest.mark.parametrize("relative", REAL_MODELS)
def test_file_operator_count_matches_interpreter(data_dir, relative):
    path = data_dir / relative
    info = read_model_info(path)
    interpreter_counts = describe_model(path)["operators"]
    assert sum(info.operator_counts.values()) == sum(interpreter_counts.values())
    assert info.size_bytes == path.stat().st_size
    assert info.subgraph_count == 1


def test_custom_ops_found_in_file(data_dir):
    assert read_model_info(data_dir / "detection/detect.tflite").custom_ops == ("TFLite_Detection_PostProcess",)
    edgetpu = read_model_info(data_dir / "coral/mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    assert edgetpu.custom_ops == ("edgetpu-custom-op",)
    assert edgetpu.is_edgetpu_compiled
    assert read_model_info(data_dir / "coral/mobilenet_v2_1.0_224_quant.tflite").custom_ops == ()


def test_small_models_have_no_custom_ops(models_dir):
    for path in sorted(models_dir.glob("*.tflite")):
        info = read_model_info(path)
        assert info.custom_ops == (), path.name
        assert not info.is_edgetpu_compiled

"""Turn dequantized output tensors into typed results, one module per task."""

"""Model definitions and training recipes whose output `edge-sdk convert` packages.

Each recipe is a module with `build_model(variant)` and `train(...)`, runnable
as `python -m models.<recipe> train ...`. Recipes import TensorFlow and Keras
inside their functions only, so importing this package stays cheap.
"""

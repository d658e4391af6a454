"""On-vehicle inference: interpreter backends, `Model`, pre- and post-processing. Never imports TensorFlow."""

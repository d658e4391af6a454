"""Cloud-side conversion of Keras/SavedModel models into quantized TFLite model packages. Imports TensorFlow lazily."""

"""The TensorFlow-free predictor: the LiteRT classifier, speech detection, segments, pooling, output,
calibration applied, and the export's file format (``export_format``), which ``model.export`` imports.

Imports only ``pipeline``'s TensorFlow-free modules, numpy, soundfile, soxr, LiteRT and onnxruntime.
"""

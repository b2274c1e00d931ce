"""The printed-text line recogniser: training code and the trained ONNX model."""

"""From a trained keyword spotter to a deployed one: predictions on audio files, detection in long
recordings, low-rank compression, int8 quantisation and export (TorchScript, ONNX)."""

"""Export: a chosen trial as a standalone early-exit network (:mod:`nas.export.network`) and as
ONNX (:mod:`nas.export.onnx`)."""

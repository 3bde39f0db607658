"""Deployment: a chosen trial as a standalone early-exit network (:mod:`nas.deploy.network`) and as
ONNX (:mod:`nas.deploy.onnx`)."""

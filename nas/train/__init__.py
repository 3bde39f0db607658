"""Training: the weight-sharing QAT supernet (:mod:`nas.train.supernet`) and the batch-norm
recalibration and exit statistics of a subnet cut from it (:mod:`nas.train.calibrate`)."""

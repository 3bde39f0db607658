"""The supernet: training the weight-sharing QAT supernet (:mod:`nas.supernet.training`) and the batch-norm
recalibration and exit statistics of a subnet cut from it (:mod:`nas.supernet.calibrate`)."""

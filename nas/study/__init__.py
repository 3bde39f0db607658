"""The search study: objectives (:mod:`~nas.study.metrics`), the candidate evaluator
(:mod:`~nas.study.evaluator`), the Optuna study and its typed trial record
(:mod:`~nas.study.study`, :mod:`~nas.study.record`), pre-screening and predictors, hypervolume,
exit modes and parallel workers. Importing this package loads nothing heavy."""

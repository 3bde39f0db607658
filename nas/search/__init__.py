"""The search: objectives (:mod:`~nas.search.metrics`), the candidate evaluator
(:mod:`~nas.search.evaluator`), the Optuna study and its typed trial record
(:mod:`~nas.search.study`, :mod:`~nas.search.record`), pre-screening and predictors, hypervolume,
exit modes and parallel workers. Importing this package loads nothing heavy."""

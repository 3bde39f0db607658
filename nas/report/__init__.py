"""Reports: the Pareto table and files (:mod:`nas.report.pareto`), plots (:mod:`nas.report.plots`)
and the study's Optuna artifacts (:mod:`nas.report.artifacts`)."""

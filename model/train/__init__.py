"""Training: the model registry, the typed config, the datasets, the optimizer and the fit loop.

Produces a run's weights; ``model.workflow`` carries a run on to validation, export and calibration.
"""

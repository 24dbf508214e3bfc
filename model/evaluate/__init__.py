"""Evaluation of a trained run on a preprocessed split: metrics, the JSON report and plots."""

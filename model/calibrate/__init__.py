"""Calibration as a step of a run: fit p_female's calibration on the run's validation speakers, through
the predictor, and write it (with the checksum) into the export."""

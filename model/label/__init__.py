"""The labelling job: a Beam job downstream of the predictor (``model.predict``) over a Common Voice release."""

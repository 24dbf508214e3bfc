"""The export: the serving SavedModel (features in the graph) and its LiteRT twin, from a run's weights."""

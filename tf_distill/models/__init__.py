"""Models: the architectures a config names, loading a saved one, and measuring a
classifier."""

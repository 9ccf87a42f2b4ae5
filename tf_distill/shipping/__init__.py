"""Shipping a trained model: SavedModel and LiteRT export, and running them as a
client would."""

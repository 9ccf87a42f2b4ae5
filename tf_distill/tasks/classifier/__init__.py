"""The classifier task: teacher logits into a smaller classifier."""

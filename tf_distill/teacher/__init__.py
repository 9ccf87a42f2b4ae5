"""The teacher's signal, computed once: cached logits, cached views, top-k logits."""

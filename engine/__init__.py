"""hazardloop engine: plain Python, no Flask."""

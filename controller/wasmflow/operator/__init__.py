"""Control plane: thin Kopf handlers and the pure functions that render child objects."""

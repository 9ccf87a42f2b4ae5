"""What a student learns from its teacher: losses, methods, the Distiller, ensembles."""

"""Exporters, one module per format: ``write(model, file)`` plus ``read(file)`` where it round-trips."""

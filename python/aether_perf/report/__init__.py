"""Reports: text (rich) renderers of profiles."""

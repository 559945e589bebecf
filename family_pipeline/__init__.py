"""family_pipeline: a national digital family map built from government registries."""

__version__ = "0.1.0"

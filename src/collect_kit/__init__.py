"""collect_kit: research and reporting kit for debt-collection teams."""

__version__ = "0.1.0"

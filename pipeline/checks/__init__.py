"""The checks of a finished output that verify runs."""

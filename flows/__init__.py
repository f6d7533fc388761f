"""pm-warehouse: the analytics warehouse for the project-management application."""

__version__ = "0.1.0"

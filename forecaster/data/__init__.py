"""Data in, and its I/O at the edge: sources (network, files), validation, revisions, the calendar, the bundle cache."""

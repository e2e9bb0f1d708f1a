"""Data cards and the HTML report for a run folder."""

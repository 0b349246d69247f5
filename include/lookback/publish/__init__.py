"""Publish: the files a run delivers into its output folder."""

"""Standardise: small normalisers, one per kind of value, each returning what it found."""

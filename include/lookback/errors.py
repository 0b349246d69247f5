"""Errors that reach people: each names the file, key, row or column at fault."""

from __future__ import annotations


class LookbackError(Exception):
    """Base class: an error the command line reports in one line, without a traceback."""


class ConfigError(LookbackError):
    """A source definition or other configuration file is wrong."""


class DeliveryError(LookbackError):
    """A delivered file cannot be read as its source definition says it should be."""


class QualityGateError(LookbackError):
    """A critical expectation failed: nothing of the batch is to be published."""

"""The SDK's version, kept apart so every module can read it without import cycles."""

__version__ = "0.1.0"

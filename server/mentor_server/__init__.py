"""mentor_server: the reward computation (scoring engine, toolsets, HTTP service, CLI)."""

__version__ = "0.1.0"

"""An Azure OpenAI assistant that lives in Slack threads. See README.md for the module map."""

__version__ = "0.1.0"

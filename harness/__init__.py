"""An AI harness service: runs tasks through an LLM with tools, behind a human approval gate."""

__version__ = "0.1.0"


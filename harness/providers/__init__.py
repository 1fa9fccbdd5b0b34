"""harness.providers"""

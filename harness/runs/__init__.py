"""harness.runs"""

"""harness.jobs"""

"""harness.api"""

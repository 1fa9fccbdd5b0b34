"""Shared test plumbing: databases, runtimes, API clients, the provider simulator."""

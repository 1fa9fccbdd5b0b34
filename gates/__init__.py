"""Release machinery: tier-marker rules, the key guard, flake budget, mutation gate, exit criteria.

Entry point: ``python -m gates {nightly,release,mutation,flake,exit-criteria,threat-model}``
(the Makefile targets call it). Imports flow ``gates -> harness``; nothing imports ``gates``
but the suite's conftest and its own tests.
"""

"""pytest plugin: golden scenarios as test items (filled in with the replay engine)."""

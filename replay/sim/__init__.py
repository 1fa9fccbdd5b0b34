"""The provider simulator's parts: one wire module per provider and the transport fault injector."""

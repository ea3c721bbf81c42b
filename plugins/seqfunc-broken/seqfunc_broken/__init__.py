"""A plugin that fails on import, on purpose: seqfunc must report it and keep the others working."""

raise RuntimeError("seqfunc-broken fails on import on purpose (a test fixture)")

"""The conversation side: config, reply generators, per-session conversations, the turn, and the UI."""

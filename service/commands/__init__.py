"""Subcommands of ``alvo``; each module defines ``register(subparsers)``.

Modules here must import heavy libraries (TensorFlow, astropy) inside their
command functions, not at module level, so ``alvo --help`` stays instant.
"""

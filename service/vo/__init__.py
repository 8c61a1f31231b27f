"""The VO protocol endpoints: one module per protocol (vosi, ssa, datalink, tap).

Each module exposes ``routes(settings) -> list[BaseRoute]`` and keeps protocol
(parameter parsing, VOTable/XML documents) apart from the data it serves.
"""

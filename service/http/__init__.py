"""Request plumbing shared by the VO endpoints and the oracle's pages.

``bodies`` (request bodies read with caps), ``errors`` (an ``AlvoError`` as a
JSON answer, busy databases as 503), ``origin`` (the cross-site write guard),
``access`` (who may write under ``ALVO_AUTH=header``). Knows no page and no
protocol: :mod:`service.vo` and :mod:`service.web` both build on it.
"""

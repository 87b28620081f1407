"""pricing-api's health endpoint: /healthz recomputes a sample price, so it waits behind the same
worker pool as /prices and slows down with the request rate."""

from pricing.engine import quote


def healthz(request):
    quote(sku="HEALTHCHECK", currency="EUR")  # exercises the rules cache and the FX client
    return {"status": "ok"}

"""Prices cart items against the catalogue."""
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache


@dataclass
class Priced:
    sku: str
    amount: Decimal


@lru_cache(maxsize=4096)
def catalogue_entry(sku: str) -> dict:
    from .catalogue import fetch

    return fetch(sku)


def price_items(items):
    return [Priced(i["sku"], Decimal(catalogue_entry(i["sku"])["price"]) * i["qty"]) for i in items]

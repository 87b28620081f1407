"""POST /api/checkout: price the cart, reserve stock, capture the payment."""
from decimal import Decimal

from flask import Blueprint, jsonify, request

from .gateway import capture
from .pricing import price_items

bp = Blueprint("checkout", __name__)

MAX_CART_ITEMS = 200


@bp.post("/api/checkout")
def checkout():
    cart = request.get_json(force=True)
    items = cart.get("items", [])[:MAX_CART_ITEMS]
    # Pricing loads each item's catalogue entry; memory grows with cart size and
    # with concurrent requests, and is released when the request ends.
    priced = price_items(items)
    total = sum((p.amount for p in priced), Decimal("0"))
    receipt = capture(cart["payment_token"], total)
    return jsonify({"receipt": receipt.id, "total": str(total)})

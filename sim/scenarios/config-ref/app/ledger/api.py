"""ledger-api: posts and reads ledger entries on /api/entries."""

from fastapi import FastAPI

from . import settings

app = FastAPI()
config = settings.load()


@app.get("/ready")
def ready() -> dict:
    return {"ok": True}


@app.post("/api/entries")
def post_entry(entry: dict) -> dict:
    return {"accepted": True, "currency": config.currency}

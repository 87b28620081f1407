"""ledger-api settings: the database DSN from the environment, the rest from settings.toml."""

import os
import tomllib
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    database_url: str
    currency: str
    close_day: int


def load() -> Settings:
    # 5.3.0 accepts a libpq DSN as well as a URL; both come in DATABASE_URL.
    database_url = os.environ["DATABASE_URL"]
    with open(os.environ.get("LEDGER_SETTINGS", "/etc/ledger/settings.toml"), "rb") as f:
        ledger = tomllib.load(f)["ledger"]
    return Settings(database_url, ledger["currency"], int(ledger["close_day"]))

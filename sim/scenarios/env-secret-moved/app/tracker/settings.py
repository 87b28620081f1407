"""shipment-tracker settings: read once at start-up from the environment."""
import logging
import os
import sys

log = logging.getLogger("tracker.settings")


def required(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        log.critical("required environment variable %s is not set", name)
        sys.exit(1)
    return value


DATABASE_URL = required("DATABASE_URL")
CARRIER_API_BASE = required("CARRIER_API_BASE")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "info")

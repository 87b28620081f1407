"""Closes the invoices whose payment window ended and hands them to collections."""
import logging

from sweeper import db, ledger

log = logging.getLogger("sweeper")


def sweep(window: str) -> None:
    due = db.invoices_due(window)
    log.info("closing %d invoices", len(due))
    for invoice in due:
        # 2.4.0: reconcile every line against the ledger before closing (about 0.5 s each).
        ledger.reconcile(invoice)
        db.close(invoice)
    log.info("handed %d invoices to collections", len(due))

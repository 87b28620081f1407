"""Copies the order lines into the ledger table, one batch at a time, from the first row."""
import logging
import os

from backfill import db

log = logging.getLogger("backfill")


def main() -> None:
    batch = int(os.environ.get("BATCH_SIZE", "10000"))
    total = db.count_order_lines()
    log.info("copying order lines into ledger_entries (%s rows)", f"{total:,}")
    copied = 0
    # No checkpoint: a stopped run starts again from row 0.
    for rows in db.order_lines(batch):
        db.insert_ledger_entries(rows)
        copied += len(rows)
        if copied % 1_000_000 < batch:
            log.info("%s rows copied (%d%%)", f"{copied:,}", copied * 100 // total)


if __name__ == "__main__":
    main()

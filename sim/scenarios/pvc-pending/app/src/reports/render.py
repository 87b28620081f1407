"""reports-worker: renders the nightly analytics reports into SCRATCH_DIR, then uploads them."""
import os
import pathlib

SCRATCH = pathlib.Path(os.environ.get("SCRATCH_DIR", "/tmp/reports"))


def render(report_id: str, rows) -> pathlib.Path:
    out = SCRATCH / f"{report_id}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f:
        for row in rows:
            f.write(row)
    return out

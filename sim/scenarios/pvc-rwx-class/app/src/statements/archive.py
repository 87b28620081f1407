"""statement-renderer: renders monthly account statements as PDFs into ARCHIVE_DIR and serves
downloads from it. Any replica may be asked for a statement another replica rendered, so the
archive is one shared directory."""
import os
import pathlib

ARCHIVE = pathlib.Path(os.environ.get("ARCHIVE_DIR", "/tmp/statements"))


def store(account: str, month: str, pdf: bytes) -> pathlib.Path:
    out = ARCHIVE / account / f"{month}.pdf"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pdf)
    return out


def fetch(account: str, month: str) -> bytes:
    return (ARCHIVE / account / f"{month}.pdf").read_bytes()

"""report-builder: renders a tenant's monthly report as PDF on /reports/<tenant>."""

from reports.pdf import Document


def render(tenant: str, rows) -> bytes:
    doc = Document(title=f"{tenant} monthly report")
    for chunk in rows.iter_chunks(size=500):
        doc.add_table(chunk)
    return doc.to_bytes()

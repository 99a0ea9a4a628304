"""Settings of attachment extraction (the ``extract:`` section of the service config).

Every limit has a safe default; reaching one marks the attachment "uninspected", which the
default policy treats as content it could not check (fail closed for outside recipients).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ExtractConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=True,
        description="Read the text of attachments (PDF, Office, ODF, CSV, ZIP, mail, calendar).",
    )
    workers: int = Field(
        default=2, ge=1, le=32, description="Extraction worker processes (each one CPU at most)."
    )
    message_timeout: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Wall-time budget in seconds for all the attachments of one mail; a worker "
        "still busy then is killed and what it had not finished counts as uninspected.",
    )
    worker_memory_mb: int = Field(
        default=1024,
        ge=128,
        le=65536,
        description="Address-space limit of each worker process (RLIMIT_AS), in MiB.",
    )
    max_attachment_bytes: int = Field(
        default=40 * 1024 * 1024,
        ge=1024,
        description="Encoded size above which an attachment is not read (uninspected).",
    )
    max_pdf_pages: int = Field(
        default=300, ge=1, description="PDF pages read; a longer PDF counts as uninspected."
    )
    max_archive_depth: int = Field(
        default=3, ge=0, le=10, description="ZIP (and mail) nesting read inside an attachment."
    )
    max_archive_members: int = Field(
        default=500, ge=1, description="Members of one archive; more counts as uninspected."
    )
    max_uncompressed_bytes: int = Field(
        default=200 * 1024 * 1024,
        ge=1024,
        description="Total uncompressed size of an archive or Office file's parts.",
    )
    max_compression_ratio: int = Field(
        default=200,
        ge=10,
        description="Uncompressed/compressed ratio above which a member "
        "is taken for a decompression bomb (uninspected).",
    )
    max_cells: int = Field(default=1_000_000, ge=1, description="Spreadsheet cells read per file.")
    max_text_chars: int = Field(
        default=4_000_000,
        ge=1000,
        description="Characters of text kept per attachment; the rest counts as uninspected.",
    )

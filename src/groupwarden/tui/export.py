"""Write a list as the user sees it (filter applied) to CSV or JSON."""

from __future__ import annotations

import csv
from pathlib import Path

from groupwarden.domain.errors import BadInput
from groupwarden.domain.text import csv_cell, safe_json


def write_records(path_text: str, records: list[dict[str, str]], columns: list[str]) -> Path:
    """Write records to path_text (.json or .csv, by suffix); return the absolute path."""
    path = Path(path_text).expanduser().resolve()
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise BadInput(f"cannot export to {path.name}: the file name must end in .csv or .json")
    try:
        with path.open("w", encoding="utf-8", newline="") as out:
            if suffix == ".json":
                out.write(safe_json(records) + "\n")
            else:
                writer = csv.writer(out)
                writer.writerow(columns)
                for record in records:
                    writer.writerow(csv_cell(record.get(c, "")) for c in columns)
    except OSError as exc:
        raise BadInput(f"cannot write {path}: {exc.strerror}") from None
    return path

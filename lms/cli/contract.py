"""`lms contract`: check event files against contract v1, export the JSON Schema, show examples."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from lms.errors import LmsError, UsageError

app = typer.Typer(
    no_args_is_help=True,
    help="The event contract v1: validate event files, export the JSON Schema, show examples.",
)


def _read_events(path: Path) -> list[tuple[str, bytes]]:
    """(where, raw JSON) per event: one per line for .jsonl, an object or an array for .json."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LmsError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise LmsError(f"{path} is a directory; pass a .json or .jsonl file") from None

    if path.suffix == ".json":
        import orjson

        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise LmsError(
                f"{path} is not valid JSON ({exc}); for one event per line use .jsonl"
            ) from None
        items = doc if isinstance(doc, list) else [doc]
        return [(f"item {i}", orjson.dumps(item)) for i, item in enumerate(items)]
    if path.suffix != ".jsonl":
        raise UsageError(f"{path}: expected a .json or .jsonl file")
    return [
        (f"line {number}", line)
        for number, line in enumerate(data.splitlines(), start=1)
        if line.strip()
    ]


@app.command()
def validate(
    file: Annotated[
        Path, typer.Argument(help="Events: .jsonl (one per line) or .json (object or array).")
    ],
    show: Annotated[int, typer.Option(help="How many invalid events to describe.")] = 10,
) -> None:
    """Check every event in FILE against contract v1; exit 1 if any is invalid."""
    from lms.contract.validate import ContractViolation, validate_event_json

    events = _read_events(file)
    failures: list[tuple[str, ContractViolation]] = []
    for where, raw in events:
        try:
            validate_event_json(raw)
        except ContractViolation as exc:
            failures.append((where, exc))

    valid = len(events) - len(failures)
    typer.echo(f"{file}: {len(events)} events, {valid} valid, {len(failures)} invalid")
    if not failures:
        return
    for reason, count in Counter(v.reason for _, v in failures).most_common():
        typer.echo(f"  {reason}: {count}")
    for where, violation in failures[:show]:
        typer.echo(f"  {where}: [{violation.reason}] {violation.message}")
    if len(failures) > show:
        typer.echo(f"  ... {len(failures) - show} more (use --show to see more)")
    raise LmsError(f"{len(failures)} of {len(events)} events in {file} break contract v1")


@app.command()
def export(
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if the files are out of date.")
    ] = False,
) -> None:
    """Write contract/v1/lms-event.schema.json from the pydantic models (the source of truth)."""
    from lms.contract.schema import export_files, schema_path
    from lms.settings import REPO_ROOT

    changed = export_files(check=check)
    names = ", ".join(str(p.relative_to(REPO_ROOT)) for p in changed)
    if check:
        if changed:
            raise LmsError(
                f"{names} out of date with lms/contract/models.py; run `lms contract export`"
            )
        typer.echo(f"{schema_path().relative_to(REPO_ROOT)} is up to date")
    else:
        typer.echo(f"wrote {names}" if changed else "schema files already up to date")


@app.command()
def examples(
    event_type: Annotated[
        str | None, typer.Argument(help="Print this type's example; omit to list the types.")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Print every example as JSON Lines (one per line).")
    ] = False,
) -> None:
    """List event types, or print example events (valid contract v1 events)."""
    from lms.contract.examples import load_example, load_examples
    from lms.contract.models import EVENT_TYPES, PAYLOAD_MODELS

    if all_:
        for example in load_examples().values():
            typer.echo(json.dumps(example, ensure_ascii=False, separators=(",", ":")))
        return
    if event_type is None:
        width = max(map(len, EVENT_TYPES))
        for name in EVENT_TYPES:
            doc = (PAYLOAD_MODELS[name].__doc__ or "").strip()
            typer.echo(f"{name:<{width}}  {doc}")
        return
    if event_type not in EVENT_TYPES:
        raise UsageError(
            f"unknown event type {event_type!r}; run `lms contract examples` to list them"
        )
    typer.echo(json.dumps(load_example(event_type), indent=2, ensure_ascii=False))

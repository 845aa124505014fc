"""Operations CLI: ``python -m shared <command>``.

  inspect FILE [--format F] [--json]   detect, parse and map a local file (no cloud access)
  replay [--limit N] [--dry-run]       move poison items back to the work queue
  backfill --source S --bucket B [--prefix P]   enqueue existing objects (history)
  check                                run the health checks and print them
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import UTC

from .errors import ConfigError, NotificationError


def _replay(args: argparse.Namespace) -> int:
    from .notifications import parse_body
    from .pipeline import connector
    from .poison import read_envelope

    conn = connector()
    conn.poison.ensure()
    moved = kept = 0
    seen = 0
    # one work item per object: a replay retries every dead-lettered record of its object, so
    # a second one (one per envelope) would only report the still-failing records again
    requeued: set[tuple[str, str]] = set()
    while seen < args.limit:
        batch = list(conn.poison.client.receive_messages(
            messages_per_page=32, visibility_timeout=args.visibility, max_messages=32))
        if not batch:
            break
        for msg in batch:
            seen += 1
            text = msg.content.decode() if isinstance(msg.content, bytes) else msg.content
            try:
                env = read_envelope(text)
            except (ValueError, NotificationError) as err:
                print(f"keep  {msg.id}: not a poison envelope ({err})")
                kept += 1
                continue
            refs = []
            if env.ref is not None:
                refs = [replace(env.ref, replay=True)]
            elif env.body and "...[cut" not in env.body:
                try:
                    refs = [replace(r, replay=True)
                            for r in parse_body(env.body, source=env.source or "?").objects]
                except NotificationError as err:
                    print(f"keep  {msg.id}: body still unreadable ({err.message[:120]})")
                    kept += 1
                    continue
            if not refs:
                print(f"keep  {msg.id}: nothing to replay ({env.kind}: {env.reason[:120]})")
                kept += 1
                continue
            for ref in refs:
                if (ref.source, ref.identity) in requeued:
                    print(f"already requeued {ref.uri} ({env.kind})")
                    continue
                requeued.add((ref.source, ref.identity))
                print(f"{'would replay' if args.dry_run else 'replay'} {ref.uri} ({env.kind})")
                if not args.dry_run:
                    conn.work.send(ref.to_json())
            if not args.dry_run:
                conn.poison.client.delete_message(msg)
            moved += 1
    print(f"{moved} replayed, {kept} kept")
    return 0


def _backfill(args: argparse.Namespace) -> int:
    from .notifications import ObjectRef
    from .pipeline import connector

    conn = connector()
    source = conn.settings.source(args.source)
    count = 0

    def pages(s3):
        return s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket,
                                                            Prefix=args.prefix)

    from datetime import datetime, timedelta

    cutoff = datetime.now(UTC) - timedelta(days=2)
    old = 0
    for page in conn.aws.call(source, "s3", pages):
        for obj in page.get("Contents", []):
            if not source.allows(args.bucket, obj["Key"]):
                continue
            old += obj["LastModified"] < cutoff
            ref = ObjectRef(source=source.name, bucket=args.bucket, key=obj["Key"],
                            size=obj.get("Size"), etag=str(obj.get("ETag", "")).strip('"'),
                            event_time=obj["LastModified"].isoformat())
            if not args.dry_run:
                conn.work.send(ref.to_json())
            count += 1
    print(f"{count} object(s) {'found' if args.dry_run else 'enqueued'}")
    if old:
        print(f"note: {old} object(s) are older than 2 days; Azure Monitor stores rows whose "
              "TimeGenerated is more than 2 days old with the ingestion time instead")
    return 0


def _check(args: argparse.Namespace) -> int:
    from .pipeline import check_health

    status, body = check_health(detail=True)  # the operator's own shell: everything
    print(json.dumps(body, indent=1))
    return 0 if status == 200 else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "inspect":
        from .cli_inspect import main as inspect_main

        return inspect_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m shared", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("inspect", help="detect, parse and map a local file")
    rp = sub.add_parser("replay", help="poison queue -> work queue")
    rp.add_argument("--limit", type=int, default=1000)
    rp.add_argument("--dry-run", action="store_true")
    rp.add_argument("--visibility", type=int, default=60)
    bp = sub.add_parser("backfill", help="enqueue objects already in S3")
    bp.add_argument("--source", required=True)
    bp.add_argument("--bucket", required=True)
    bp.add_argument("--prefix", default="")
    bp.add_argument("--dry-run", action="store_true")
    sub.add_parser("check", help="run the health checks")
    args = parser.parse_args(argv)
    try:
        return {"replay": _replay, "backfill": _backfill, "check": _check}[args.command](args)
    except ConfigError as err:
        print(err.message, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

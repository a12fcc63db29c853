"""Where the Postgres CPU of one full-flow file goes (README.md beside this
file): flow.sql's statements sent in the API's round trips, at concurrency
8, as the API sends them and with one thing changed at a time.

Run through `attribute`, which brings psycopg (tools/pg-floor). pgbench
cannot send several statements with a Sync each without waiting for each
answer; libpq's pipeline mode can, and so sends exactly what the API does.
"""
import multiprocessing
import os
import queue
import re
import sys
import uuid

import psycopg
from psycopg import pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from floor import CLIENTS, DB, VARS, cpu_while, create_database, flow_statements, summary

# The API's round trips for one file (`crate::db`: BEGIN leaves with the
# first statement, COMMIT with the last; `each_route_costs` counts them):
# create (1), register (2: lock and check, then insert), complete (2: read
# and lock, then record; CompleteMultipartUpload runs between them).
ROUND_TRIPS = [
    ["BEGIN", "insert_session_counted", "COMMIT"],
    ["BEGIN", "lock_owned", "check_category"],
    ["insert_pending", "COMMIT"],
    ["BEGIN", "owned_session_and_locked_file"],
    ["record_listed_and_complete", "COMMIT"],
]

# (name, one Sync per round trip, named statements, sslmode, server options)
VARIANTS = [
    ("as the API sends them: unnamed, a Sync per statement, TLS", False, False, "prefer", ""),
    ("one Sync per round trip (the issue's limit)", True, False, "prefer", ""),
    ("named statements (parsed and planned once per connection)", False, True, "prefer", ""),
    ("without TLS", False, False, "disable", ""),
    ("COMMIT without waiting for the WAL flush", False, False, "prefer", "-c synchronous_commit=off"),
]


def numbered(sql):
    """flow.sql's `:name` variables as `$n`, and the names in order."""
    names = []

    def number(match):
        names.append(match.group(1))
        return f"${len(names)}"
    return re.sub(r"(?<!:):([a-z]+)\b", number, sql), names


def client(args):
    """One connection sending `files` full-flow files; reports its backend's pid."""
    one_sync, named, sslmode, options, files, pids, go = args
    statements = {"BEGIN": "BEGIN", "COMMIT": "COMMIT", **flow_statements()}
    statements = {name: numbered(sql) for name, sql in statements.items()}
    conn = psycopg.connect(host="127.0.0.1", user="postgres", dbname=DB, sslmode=sslmode,
                           options=options, application_name="pg-floor-attribute", autocommit=True)
    pg = conn.pgconn
    if named:
        for name, (sql, _) in statements.items():
            pg.prepare(name.encode(), sql.encode())
    pids.put(pg.backend_pid)
    go.wait()
    for _ in range(files):
        values = dict(VARS, sid=str(uuid.uuid4()), fid=str(uuid.uuid4()), uid=str(uuid.uuid4()),
                      pids="{%s}" % uuid.uuid4())
        for round_trip in ROUND_TRIPS:
            pg.enter_pipeline_mode()
            syncs = 0
            for name in round_trip:
                sql, names = statements[name]
                params = [values[n].encode() for n in names]
                if named:
                    pg.send_query_prepared(name.encode(), params)
                else:
                    pg.send_query_params(sql.encode(), params)
                if not one_sync:
                    pg.pipeline_sync()
                    syncs += 1
            if one_sync:
                pg.pipeline_sync()
                syncs += 1
            pg.flush()
            while syncs:
                result = pg.get_result()
                if result is None:
                    continue
                if result.status == pq.ExecStatus.PIPELINE_SYNC:
                    syncs -= 1
                elif result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
                    # An Exception, not SystemExit: the pool hands it to get(); a worker that exits would hang it.
                    raise RuntimeError(f"{round_trip}: {result.error_message.decode()}")
            pg.exit_pipeline_mode()
    conn.close()


def walwriter():
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=DB, sslmode="disable") as conn:
        return conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'").fetchone()[0]


def measure(variant, files):
    """Backends' and the WAL writer's CPU ms per file for one run."""
    _, one_sync, named, sslmode, options = variant
    manager = multiprocessing.Manager()
    pids, go = manager.Queue(), manager.Event()
    with multiprocessing.Pool(CLIENTS) as pool:
        done = pool.map_async(client, [(one_sync, named, sslmode, options, files, pids, go)] * CLIENTS)
        backends = []
        while len(backends) < CLIENTS:
            if done.ready():
                done.get()  # a client failed before it started: raises its error
            try:
                backends.append(pids.get(timeout=0.1))
            except queue.Empty:
                pass
        writer = walwriter()
        spent = cpu_while(backends + [writer], lambda: not done.ready(), started=go.set)
        done.get()
    per_file = CLIENTS * files * 1e6
    return sum(spent.get(p, 0) for p in backends) / per_file, spent.get(writer, 0) / per_file


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    create_database()
    results = {variant[0]: [] for variant in VARIANTS}
    for r in range(rounds):
        for variant in VARIANTS:
            try:
                backends, writer = measure(variant, files)
            except (RuntimeError, psycopg.Error) as error:
                sys.exit(f"pg-floor attribute: {variant[0]}: {error}")
            results[variant[0]].append((backends, writer))
            print(f"pg-floor attribute: round {r + 1}: {variant[0]}: {backends:.3f} ms/file "
                  f"(WAL writer {writer:.3f})", file=sys.stderr)
    baseline = sorted(b for b, _ in results[VARIANTS[0][0]])[rounds // 2]
    print(f"| the API's round trips, concurrency {CLIENTS}, {CLIENTS * files} files a run | "
          "backends' CPU ms/file: median (runs) | against the first | WAL writer ms/file: median |")
    print("|---|---|---:|---:|")
    for name, runs in results.items():
        median = sorted(b for b, _ in runs)[rounds // 2]
        writer = sorted(w for _, w in runs)[rounds // 2]
        print(f"| {name} | {summary([b for b, _ in runs])} | {median - baseline:+.2f} | {writer:.2f} |")


if __name__ == "__main__":
    main()

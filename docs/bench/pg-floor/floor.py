"""What `run` and `attribute` share: the database they measure in, the values
the full flow's statements take, and the backends' CPU (README.md)."""
import os, re, subprocess, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DB = "pg_floor"
CLIENTS = 8
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qtA"]
ENV = {k: v for k, v in os.environ.items() if k not in ("PGOPTIONS", "PGSSLMODE")}

# The values the statements take that are not per file (bench-load's, one user).
VARS = {
    "user": "pg-floor-user", "day": "2026-12-07", "ts": "2026-12-07 03:02:11.645036", "f": "false",
    "meta": '{"files": [{"ext": "pdf", "name": "manual.pdf", "size": 1024, "type": "application/pdf", '
            '"category": "instruction"}], "declaredFiles": {"instruction": 1}}',
    "key": "dev/moc-instructions/pg-floor-user/s/instruction/f.pdf",
    "url": "http://127.0.0.1:9400/moc-load/dev/moc-instructions/pg-floor-user/s/instruction/f.pdf",
}


def create_database():
    """Drops and creates DB and applies migrations/ to it."""
    subprocess.run(PSQL + ["-c", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", "-c", f"CREATE DATABASE {DB}"],
                   check=True, env=ENV, stdout=subprocess.DEVNULL)
    for migration in sorted(os.listdir(os.path.join(ROOT, "migrations"))):
        subprocess.run(PSQL + ["-d", DB, "-f", os.path.join(ROOT, "migrations", migration)],
                       check=True, env=ENV, stdout=subprocess.DEVNULL)


def flow_statements():
    """flow.sql's statements by the `crate::store` function each copies
    (its `-- POST route: store::module::function` comment), in order."""
    with open(os.path.join(HERE, "flow.sql")) as f:
        flow = f.read()
    statements = {}
    for block in re.split(r"\n(?=-- POST )", flow)[1:]:
        comment, body = block.split("\n", 1)
        function = comment.rsplit("::", 1)[1].strip()
        statements[function] = body.split("\nCOMMIT;")[0].strip().rstrip(";")
    return statements


def on_cpu_ns(pid):
    """A process's time on CPU so far (schedstat), as bench-load reads it."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def cpu_while(pids, running, started=lambda: None):
    """Each process's CPU ns from before `started()` until `running()` turns
    false, read every 10 ms: a backend's counter goes with it, so its last
    reading counts. A pid already gone at the start is left out."""
    first = {}
    for pid in pids:
        try:
            first[pid] = on_cpu_ns(pid)
        except OSError:
            pass
    last = dict(first)
    started()
    while running():
        for pid in first:
            try:
                last[pid] = on_cpu_ns(pid)
            except OSError:
                pass
        time.sleep(0.01)
    return {pid: last[pid] - first[pid] for pid in first}


def summary(values, digits=2):
    """'median (each run)'."""
    ordered = sorted(values)
    return f"{ordered[len(ordered) // 2]:.{digits}f} ({', '.join(f'{v:.{digits}f}' for v in values)})"

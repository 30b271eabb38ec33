"""A throwaway PostgreSQL for tests: initdb into a temporary directory and
pg_ctl on a free loopback port, from Debian's `postgresql` package
(/usr/lib/postgresql/<version>/bin). PostgreSQL refuses to run as root, so
under root the server runs as the `postgres` user the package creates.
`stop()` and `start()` let a test take the database away and bring it back;
`close()` stops it for good (pg_ctl signals only this server's postmaster).
"""

import glob
import os
import shutil
import subprocess
import tempfile

from conftest import free_port


def _bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (scripts/test.sh does)")
    return os.path.dirname(found[-1])


class Postgres:
    def __init__(self):
        self.bin = _bin_dir()
        self.directory = tempfile.mkdtemp(prefix="waggle-pg-")
        self.data = os.path.join(self.directory, "data")
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run("initdb", "-A", "trust", "-U", "waggle", "-E", "UTF8", "-D", self.data)
        self.start()
        subprocess.run(
            [os.path.join(self.bin, "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "waggle", "waggle"],
            check=True,
            capture_output=True,
        )
        self.url = f"postgres://waggle@127.0.0.1:{self.port}/waggle"

    def _run(self, program, *args):
        command = [os.path.join(self.bin, program), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stdout}{result.stderr}")

    def start(self):
        self._run(
            "pg_ctl", "-D", self.data, "-l", os.path.join(self.directory, "server.log"), "-w",
            "-o", f"-h 127.0.0.1 -p {self.port} -k {self.directory}", "start",
        )

    def stop(self):
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def query(self, sql):
        """The rows of `sql` through psql, as lists of strings."""
        out = subprocess.run(
            [os.path.join(self.bin, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "waggle", "-d", "waggle",
             "-At", "-F", "\t", "-c", sql],
            check=True, capture_output=True, text=True,
        ).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def close(self):
        try:
            self.stop()
        except RuntimeError:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)

//! A throwaway PostgreSQL for tests: `initdb` into a temporary directory and
//! `pg_ctl start` on a free loopback port, from Debian's `postgresql` package
//! (`/usr/lib/postgresql/<version>/bin`). PostgreSQL refuses to run as root,
//! so under root the server runs as the `postgres` user the package creates.
//! `WAGGLE_TEST_POSTGRES_URL` names an existing server instead. Stopped (by
//! `pg_ctl stop`, which signals only this server's postmaster) on drop.

use std::path::PathBuf;
use std::process::Command;

/// A running test server, or the one named by the environment.
pub struct Postgres {
    /// `postgres://...` of its `waggle` database.
    pub url: String,
    owned: Option<(PathBuf, tempfile::TempDir)>,
}

fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: `apt-get install postgresql` (scripts/test.sh does)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no /usr/lib/postgresql/*/bin/initdb: `apt-get install postgresql`")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// `program args` as the server's user.
fn as_server_user(program: &std::path::Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    /// Starts a server (or takes `WAGGLE_TEST_POSTGRES_URL`).
    pub fn start() -> Postgres {
        if let Ok(url) = std::env::var("WAGGLE_TEST_POSTGRES_URL") {
            return Postgres { url, owned: None };
        }
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("waggle-pg-")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["postgres:postgres"]).arg(dir.path());
                    c
                },
                "chown the PostgreSQL directory",
            );
        }
        let mut initdb = as_server_user(&bin.join("initdb"));
        initdb
            .args(["-A", "trust", "-U", "waggle", "-E", "UTF8", "-D"])
            .arg(&data);
        run(initdb, "initdb");
        let port = free_port();
        let mut start = as_server_user(&bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("server.log"))
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-h 127.0.0.1 -p {port} -k {} -c fsync=off",
                dir.path().display()
            ))
            .arg("start");
        run(start, "pg_ctl start");
        let mut create = Command::new(bin.join("createdb"));
        create.args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "waggle",
            "waggle",
        ]);
        run(create, "createdb");
        Postgres {
            url: format!("postgres://waggle@127.0.0.1:{port}/waggle"),
            owned: Some((data, dir)),
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some((data, _dir)) = &self.owned {
            let mut stop = as_server_user(&bin_dir().join("pg_ctl"));
            stop.arg("-D").arg(data).args(["-m", "immediate", "stop"]);
            let _ = stop.output();
        }
    }
}

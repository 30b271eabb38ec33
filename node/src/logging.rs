//! Log output: native journald entries under systemd (priority per level,
//! one entry per event however many lines it has, structured fields), text
//! on a terminal (coloured) or a pipe (plain), or JSON lines.
//!
//! Set once at start-up, after the configuration is read, for the life of
//! the process.

use std::os::fd::AsRawFd;

use anyhow::{Context, Result};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Environment variable whose filter overrides `log.level`.
pub const LOG_ENV: &str = "WAGGLE_LOG";

/// The format `auto` stands for in this process.
pub fn resolve(format: LogFormat) -> LogFormat {
    match format {
        LogFormat::Auto if stderr_is_journal() => LogFormat::Journald,
        LogFormat::Auto => LogFormat::Text,
        other => other,
    }
}

/// True when systemd connected stderr to the journal: `JOURNAL_STREAM`
/// names the device and inode of stderr (systemd.exec(5)).
pub fn stderr_is_journal() -> bool {
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole `stat` into the buffer on success.
    let ok = unsafe { libc::fstat(std::io::stderr().as_raw_fd(), stat.as_mut_ptr()) } == 0;
    if !ok {
        return false;
    }
    // SAFETY: fstat succeeded, so the buffer is initialised.
    let stat = unsafe { stat.assume_init() };
    dev.parse::<u64>().ok() == Some(stat.st_dev) && ino.parse::<u64>().ok() == Some(stat.st_ino)
}

/// Installs the process-wide subscriber for `config`.
pub fn init(config: &LogConfig) -> Result<()> {
    let filter = match std::env::var(LOG_ENV) {
        Ok(directives) => EnvFilter::try_new(&directives)
            .with_context(|| format!("{LOG_ENV}=`{directives}` is not a log filter"))?,
        Err(_) => EnvFilter::try_new(&config.level)
            .with_context(|| format!("log.level `{}` is not a log filter", config.level))?,
    };
    let registry = tracing_subscriber::registry().with(filter);
    match resolve(config.format) {
        LogFormat::Journald => {
            let journald = tracing_journald::layer()
                .context("log.format journald: cannot reach the journal socket")?
                .with_syslog_identifier("waggle".to_string());
            registry.with(journald).try_init()
        }
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text | LogFormat::Auto => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(ansi)
                        .with_writer(std::io::stderr),
                )
                .try_init()
        }
    }
    .context("cannot install the logger")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_text_without_a_journal_stream() {
        // Test processes never run with stderr connected to the journal.
        if std::env::var_os("JOURNAL_STREAM").is_none() {
            assert_eq!(resolve(LogFormat::Auto), LogFormat::Text);
        }
        assert_eq!(resolve(LogFormat::Json), LogFormat::Json);
    }
}

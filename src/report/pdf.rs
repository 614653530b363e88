//! Printing the HTML report to PDF with a headless Chromium (`segflow report RUN --pdf`).
//!
//! segflow draws nothing itself: Chromium lays the report out for print, as a reader's browser
//! would. It runs with a throwaway profile, no background networking (the report is
//! self-contained) and a time limit.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The environment variable naming the Chromium (or Chrome) executable to use.
pub const CHROMIUM_ENV: &str = "SEGFLOW_CHROMIUM";

/// The executables looked up on `PATH`, in order, when [`CHROMIUM_ENV`] is not set.
pub const CHROMIUM_NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// How long Chromium may take to print one report before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Prints the HTML page `html` to the PDF file `pdf` with a headless Chromium.
///
/// Chromium is the executable named by `SEGFLOW_CHROMIUM`, else the first of `chromium`,
/// `chromium-browser` and `google-chrome` on `PATH`. `pdf` appears complete or not at all:
/// Chromium prints to a hidden file next to it, which is renamed when it holds a PDF.
///
/// Errors: [`Error::Chromium`] (exit code 11) when Chromium is missing, fails, prints nothing or
/// takes longer than [`TIMEOUT`]; [`Error::RunFolder`] when `html` is not a file;
/// [`Error::Output`] when `pdf` cannot be written.
pub fn print_to_pdf(html: &Path, pdf: &Path) -> Result<()> {
    let browser = find_chromium(std::env::var_os(CHROMIUM_ENV), std::env::var_os("PATH"))?;
    print_with(&browser, html, pdf, TIMEOUT)
}

/// The Chromium to use: `env` (the value of [`CHROMIUM_ENV`]) when set, else the first of
/// [`CHROMIUM_NAMES`] found in the directories of `path` (a `PATH` value).
pub fn find_chromium(env: Option<OsString>, path: Option<OsString>) -> Result<PathBuf> {
    let on_path = |name: &OsStr| {
        path.iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
    };
    if let Some(named) = env.filter(|v| !v.is_empty()) {
        let named_path = PathBuf::from(&named);
        if is_executable(&named_path) {
            return Ok(named_path);
        }
        if named_path.components().count() == 1
            && let Some(found) = on_path(&named)
        {
            return Ok(found);
        }
        return Err(Error::Chromium {
            message: format!(
                "{CHROMIUM_ENV} names {}, which is not an executable file",
                named_path.display()
            ),
            help: Some(format!(
                "set {CHROMIUM_ENV} to the path of a Chromium or Chrome executable, or unset it \
                 to use `chromium` from PATH"
            )),
        });
    }
    CHROMIUM_NAMES
        .iter()
        .find_map(|name| on_path(OsStr::new(name)))
        .ok_or_else(|| Error::Chromium {
            message: format!(
                "printing to PDF needs Chromium, and none of {} is on PATH",
                CHROMIUM_NAMES.join(", ")
            ),
            help: Some(format!(
                "install Chromium (Debian/Ubuntu: `apt-get install chromium`), or set \
                 {CHROMIUM_ENV} to the path of a Chromium or Chrome executable"
            )),
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// [`print_to_pdf`] with `browser` and a time limit of `timeout`.
pub(crate) fn print_with(browser: &Path, html: &Path, pdf: &Path, timeout: Duration) -> Result<()> {
    let html = html
        .canonicalize()
        .ok()
        .filter(|p| p.is_file())
        .ok_or_else(|| Error::RunFolder {
            folder: html
                .parent()
                .map_or_else(|| ".".into(), |p| p.display().to_string()),
            message: format!("has no {}", html.display()),
        })?;
    let url = url::Url::from_file_path(&html)
        .map_err(|()| Error::Internal(format!("no file URL for {}", html.display())))?;
    let name = pdf
        .file_name()
        .ok_or_else(|| Error::output(pdf, "not a file name"))?;
    let folder = match pdf.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut partial_name = OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".{}.partial", std::process::id()));
    let partial = folder.join(partial_name);
    // Chromium opens the file itself and says nothing when it cannot: find out here.
    File::create(&partial).map_err(|e| Error::output(pdf, e))?;
    let printed = run_chromium(browser, &url, &partial, timeout);
    let result = printed.and_then(|()| {
        let mut head = [0u8; 5];
        let is_pdf = File::open(&partial)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
            && &head == b"%PDF-";
        if !is_pdf {
            return Err(Error::Chromium {
                message: format!(
                    "{} exited without printing {}",
                    browser.display(),
                    html.display()
                ),
                help: Some(CHROMIUM_HELP.to_string()),
            });
        }
        std::fs::rename(&partial, pdf).map_err(|e| Error::output(pdf, e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

const CHROMIUM_HELP: &str = "run the same Chromium by hand with --headless --print-to-pdf to see \
                             its messages, or point SEGFLOW_CHROMIUM at another Chromium or Chrome";

/// Runs `browser` to print `url` into `into`, killing it (and its helper processes) after
/// `timeout`.
fn run_chromium(browser: &Path, url: &url::Url, into: &Path, timeout: Duration) -> Result<()> {
    let failed = |message: String| Error::Chromium {
        message,
        help: Some(CHROMIUM_HELP.to_string()),
    };
    let profile = tempfile::Builder::new()
        .prefix("segflow-chromium-")
        .tempdir()
        .map_err(|e| failed(format!("cannot create a temporary Chromium profile: {e}")))?;
    let log_path = profile.path().join("segflow-stderr.log");
    let log = File::create(&log_path)
        .map_err(|e| failed(format!("cannot create a temporary Chromium profile: {e}")))?;
    let mut command = Command::new(browser);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--no-pdf-header-footer")
        .arg(format!("--print-to-pdf={}", into.display()))
        .arg(url.as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    {
        use std::os::unix::process::CommandExt;
        // Its own process group, so that a timeout kills Chromium's helpers too.
        command.process_group(0);
        // segflow bounds its address space (src/app.rs); Chromium reserves far more address
        // space than memory and, under that bound, exits 0 without printing anything.
        // SAFETY: between fork and exec the closure only calls getrlimit and setrlimit, which
        // are async-signal-safe, on a local struct.
        unsafe {
            command.pre_exec(|| {
                let mut limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::getrlimit(libc::RLIMIT_AS, &mut limit) == 0 {
                    limit.rlim_cur = limit.rlim_max;
                    let _ = libc::setrlimit(libc::RLIMIT_AS, &limit);
                }
                Ok(())
            });
        }
    }
    let mut child = command
        .spawn()
        .map_err(|e| failed(format!("cannot start {}: {e}", browser.display())))?;
    let status = wait_or_kill(&mut child, timeout)
        .map_err(|e| failed(format!("waiting for {}: {e}", browser.display())))?;
    match status {
        None => Err(failed(format!(
            "{} did not finish printing within {} s and was stopped",
            browser.display(),
            timeout.as_secs()
        ))),
        Some(status) if !status.success() => Err(failed(format!(
            "{} failed ({status}): {}",
            browser.display(),
            last_lines(&log_path)
        ))),
        Some(_) => Ok(()),
    }
}

/// The child's exit status, or `None` when it ran longer than `timeout` and its process group
/// was killed.
fn wait_or_kill(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if start.elapsed() >= timeout {
            if let Ok(group) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill only sends a signal; the group is the child's own (process_group(0)).
                unsafe {
                    libc::kill(-group, libc::SIGKILL);
                }
            }
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines Chromium wrote to standard error, without its D-Bus noise.
fn last_lines(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("dbus") && !l.trim().is_empty())
        .collect();
    let tail = &lines[lines.len().saturating_sub(5)..];
    if tail.is_empty() {
        "it wrote no message".to_string()
    } else {
        tail.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn executable(dir: &Path, name: &str, script: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn chromium_is_found_on_path_in_order_and_the_environment_variable_wins() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let chrome = executable(second.path(), "google-chrome", "");
        let browser = executable(second.path(), "chromium-browser", "");
        // Not executable: skipped.
        std::fs::write(first.path().join("chromium"), "").unwrap();
        let path = std::env::join_paths([first.path(), second.path()]).unwrap();
        assert_eq!(find_chromium(None, Some(path.clone())).unwrap(), browser);
        assert_eq!(
            find_chromium(Some(chrome.clone().into()), Some(path.clone())).unwrap(),
            chrome
        );
        assert_eq!(
            find_chromium(Some("google-chrome".into()), Some(path.clone())).unwrap(),
            chrome
        );
        // Set but empty: as if unset.
        assert_eq!(find_chromium(Some("".into()), Some(path)).unwrap(), browser);
    }

    #[test]
    fn a_missing_chromium_says_how_to_install_it() {
        let empty = tempfile::tempdir().unwrap();
        let error = find_chromium(None, Some(empty.path().into())).unwrap_err();
        assert_eq!(error.exit_code(), crate::error::exit::CHROMIUM);
        let help = miette::Diagnostic::help(&error).unwrap().to_string();
        assert!(help.contains("apt-get install chromium"), "{help}");
        assert!(help.contains("SEGFLOW_CHROMIUM"), "{help}");
        assert!(
            error
                .to_string()
                .contains("chromium, chromium-browser, google-chrome")
        );

        let wrong = find_chromium(Some("/nonexistent/chrome".into()), None).unwrap_err();
        assert!(
            wrong
                .to_string()
                .contains("SEGFLOW_CHROMIUM names /nonexistent/chrome"),
            "{wrong}"
        );
    }

    #[test]
    fn chromium_gets_the_print_flags_and_the_pdf_appears_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let args = dir.path().join("args.txt");
        // Writes a PDF header where --print-to-pdf says, and its arguments one a line.
        let fake = executable(
            dir.path(),
            "chromium",
            &format!(
                "for a in \"$@\"; do echo \"$a\" >> '{}'; case \"$a\" in --print-to-pdf=*) printf '%%PDF-1.4 fake' > \"${{a#--print-to-pdf=}}\";; esac; done",
                args.display()
            ),
        );
        let html = dir.path().join("report with space.html");
        std::fs::write(&html, "<p>hi</p>").unwrap();
        let pdf = dir.path().join("report.pdf");
        print_with(&fake, &html, &pdf, Duration::from_secs(30)).unwrap();
        assert_eq!(std::fs::read(&pdf).unwrap(), b"%PDF-1.4 fake");
        let args = std::fs::read_to_string(&args).unwrap();
        let lines: Vec<&str> = args.lines().collect();
        assert_eq!(
            lines[..4],
            [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking"
            ]
        );
        assert!(lines[4].starts_with("--user-data-dir="), "{args}");
        assert_eq!(lines[5], "--no-pdf-header-footer");
        assert!(lines[6].starts_with("--print-to-pdf="), "{args}");
        assert!(
            lines[7].starts_with("file:///") && lines[7].ends_with("report%20with%20space.html")
        );
        assert_eq!(lines.len(), 8, "{args}");
        // The throwaway profile is gone.
        let profile = lines[4].trim_start_matches("--user-data-dir=");
        assert!(!Path::new(profile).exists(), "{profile} was left behind");
        // Only the PDF was added (no partial file left).
        let mut entries: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        entries.sort();
        assert_eq!(
            entries,
            [
                "args.txt",
                "chromium",
                "report with space.html",
                "report.pdf"
            ]
        );
    }

    #[test]
    fn a_chromium_that_prints_nothing_fails_or_hangs_is_an_error_and_leaves_no_pdf() {
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("report.html");
        std::fs::write(&html, "<p>hi</p>").unwrap();
        let pdf = dir.path().join("report.pdf");
        let silent = executable(dir.path(), "silent", "exit 0");
        let failing = executable(dir.path(), "failing", "echo 'it broke' >&2; exit 3");
        let hanging = executable(dir.path(), "hanging", "sleep 30");
        let cases = [
            (silent, "exited without printing"),
            (failing, "it broke"),
            (hanging, "did not finish printing within 1 s"),
        ];
        for (browser, expected) in cases {
            let start = Instant::now();
            let error = print_with(&browser, &html, &pdf, Duration::from_secs(1)).unwrap_err();
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "not killed in time"
            );
            assert!(error.to_string().contains(expected), "{error}");
            assert_eq!(error.exit_code(), crate::error::exit::CHROMIUM);
            assert!(!pdf.exists());
            assert_eq!(
                std::fs::read_dir(dir.path()).unwrap().count(),
                4,
                "a partial file was left"
            );
        }
        let missing = print_with(
            Path::new("/bin/true"),
            &dir.path().join("nope.html"),
            &pdf,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(missing.exit_code(), crate::error::exit::RUN_FOLDER);
    }
}

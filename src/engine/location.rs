//! How a path segflow reads is handed to DataFusion. DataFusion takes a plain path string as a
//! glob pattern when it holds `*`, `?` or `[`, so a folder named `runs/q4 [draft]` or
//! `Projects [2026]` would be searched for instead of read. Every literal path (a run folder's
//! files, `--source`, an expanded glob's files) goes through [`literal`], which gives a `file://`
//! URL: DataFusion reads a URL as written, never as a pattern.

use std::path::Path;

use crate::error::{Error, Result};

/// The `file://` URL of `path`, which DataFusion reads literally (no glob expansion).
pub fn literal(path: &Path) -> Result<String> {
    let absolute = std::path::absolute(path).map_err(|reason| Error::ReadFile {
        path: path.to_path_buf(),
        reason,
    })?;
    url::Url::from_file_path(&absolute)
        .map(String::from)
        .map_err(|()| Error::ReadFile {
            path: path.to_path_buf(),
            reason: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "cannot be written as a file URL",
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped_not_expanded() {
        let url = literal(Path::new("/data/runs/q4 [draft]/a?b#c*.parquet")).unwrap();
        assert_eq!(url, "file:///data/runs/q4%20[draft]/a%3Fb%23c*.parquet");
    }
}

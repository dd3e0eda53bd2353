//! Reading articles: a path or `-` for standard input, as UTF-8 text.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Reads the article at `path` (`-` is standard input). Text that is not UTF-8 is an error naming the
/// first bad byte, rather than a lossy guess that would shift every offset after it.
pub fn read_article(path: &Path) -> Result<String> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("<stdin>", e))?;
    } else {
        bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    }
    String::from_utf8(bytes).map_err(|e| {
        Error::Input(format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

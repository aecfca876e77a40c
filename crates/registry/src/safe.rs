//! Writing pulled files into a folder without escaping it: no absolute paths, no `..`, no
//! writing through symlinks, no overwriting.

use crate::error::{RegistryError, io};
use std::path::{Component, Path, PathBuf};

fn unsafe_path(path: &str, reason: &str) -> RegistryError {
    RegistryError::Unsafe { path: path.to_string(), reason: reason.to_string() }
}

/// Checks a `/`-separated relative path from a manifest or annotation.
pub fn check_relative(path: &str) -> Result<(), RegistryError> {
    if path.is_empty() {
        return Err(unsafe_path(path, "empty path"));
    }
    if path.starts_with('/') || Path::new(path).has_root() || path.contains(':') && path.len() > 1 && path.as_bytes()[1] == b':' {
        return Err(unsafe_path(path, "absolute path"));
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(unsafe_path(path, "backslash or NUL in the path"));
    }
    for c in path.split('/') {
        match c {
            "" | "." => return Err(unsafe_path(path, "empty or '.' path component")),
            ".." => return Err(unsafe_path(path, "'..' would leave the target folder")),
            _ => {}
        }
    }
    if Path::new(path).components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(unsafe_path(path, "not a plain relative path"));
    }
    Ok(())
}

/// Creates `root/rel` as a new file, creating folders on the way; refuses a path that is not
/// plain and relative, any existing symlink on the way (it could lead out of `root`), and an
/// existing file.
pub fn create_file(root: &Path, rel: &str) -> Result<(std::fs::File, PathBuf), RegistryError> {
    check_relative(rel)?;
    let parts: Vec<&str> = rel.split('/').collect();
    let mut dir = root.to_path_buf();
    for part in &parts[..parts.len() - 1] {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(unsafe_path(rel, &format!("{} is a symlink, which could lead out of the folder", dir.display())));
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(unsafe_path(rel, &format!("{} exists and is not a folder", dir.display()))),
            Err(_) => std::fs::create_dir(&dir).map_err(|e| io(&dir, e))?,
        }
    }
    let path = root.join(rel);
    if let Ok(m) = std::fs::symlink_metadata(&path) {
        let what = if m.file_type().is_symlink() {
            "a symlink is in its place, which could lead out of the folder"
        } else {
            "the file exists (listed twice?)"
        };
        return Err(unsafe_path(rel, what));
    }
    // create_new: O_EXCL, which never follows a symlink planted after the check.
    let f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| io(&path, e))?;
    Ok((f, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_that_leave_the_folder() {
        for ok in ["plan.json", "report/report.html", "a/b/c.bin", "..x", "x.."] {
            assert!(check_relative(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.", "a\\..\\b", "C:x", "a/b/"] {
            assert!(check_relative(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_symlinks_and_existing_files() {
        let t = tempfile::tempdir().expect("tmp");
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&root).expect("root");
        std::fs::create_dir_all(&outside).expect("outside");
        std::os::unix::fs::symlink(&outside, root.join("link")).expect("link");
        std::os::unix::fs::symlink(outside.join("f"), root.join("file")).expect("file link");
        let e = create_file(&root, "link/x").expect_err("through a dir symlink").to_string();
        assert!(e.contains("symlink"), "{e}");
        let e = create_file(&root, "file").expect_err("onto a symlink").to_string();
        assert!(e.contains("symlink"), "{e}");
        assert!(!outside.join("x").exists() && !outside.join("f").exists());
        create_file(&root, "sub/ok").expect("plain file");
        assert!(create_file(&root, "sub/ok").is_err(), "an existing file is not overwritten");
    }
}

//! Renders kept across runs (`--cache DIR|off`, `ENVFENCE_CACHE`): `helm template`'s output
//! stored under the user's cache folder by a content key, so that a second scan of the same
//! charts and values does not run helm again.
//!
//! The key hashes everything the output depends on: the chart's files, the values, the
//! release, namespace and flags ([`super::cache::content_hash`]), and the helm binary and its
//! version and default kube-version. Two repositories share an entry only when all of that is
//! the same, and then the output is the same. Each entry carries its key and a hash of its
//! output, checked on every read: an entry that does not match (a torn write, a file edited
//! by hand) is a miss and is rendered again. The folder is bounded: past [`MAX_BYTES`], the
//! entries used longest ago are removed after the scan.
//!
//! The folder is trusted as the user's own: a cache inside the scanned repository is refused
//! (the repository could plant renders there), and the GitHub Action restores on pull
//! requests what only default-branch runs save (docs/github-action.md says why).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Helm;

/// The folder's total size past which the oldest entries are removed.
pub const MAX_BYTES: u64 = 512 << 20;

/// The first line of every entry, with the format's version.
const MAGIC: &[u8] = b"envfence render v1\n";

/// The subfolder of the cache folder that holds the renders of this format.
const SUBDIR: &str = "renders-v1";

/// Where rendered output is kept between runs.
#[derive(Debug, Clone)]
pub struct RenderStore {
    dir: PathBuf,
}

/// The key of one render in the store: the render's content hash, and the helm that ran it.
pub(super) fn store_key(content: &[u8; 32], helm: &Helm) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(MAGIC);
    h.update(content);
    h.update(helm.path.to_string_lossy().as_bytes());
    h.update([0]);
    h.update(helm.version.as_bytes());
    h.update([0]);
    h.update(helm.kube_version.as_deref().unwrap_or("").as_bytes());
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl RenderStore {
    /// The store in `dir`, made when absent. `root` is the scanned repository: a store
    /// inside it is refused.
    pub fn open(dir: &Path, root: &Path) -> Result<RenderStore, String> {
        let shown = dir.display();
        let root = fs::canonicalize(root).map_err(|e| format!("{}: {e}", root.display()))?;
        // Where the folder would be, its links resolved, before anything is made: a folder
        // inside the repository is refused without writing into the repository.
        let renders = resolved(&dir.join(SUBDIR)).map_err(|e| format!("--cache {shown}: {e}"))?;
        if renders.starts_with(&root) {
            return Err(format!(
                "--cache {shown}: the folder is inside the scanned repository, which could plant renders in it; use a folder outside it, or --cache off"
            ));
        }
        fs::create_dir_all(&renders)
            .map_err(|e| format!("--cache {shown}: cannot make the folder: {e}"))?;
        let real = fs::canonicalize(&renders).map_err(|e| format!("--cache {shown}: {e}"))?;
        if real.starts_with(&root) {
            return Err(format!(
                "--cache {shown}: the folder is inside the scanned repository, which could plant renders in it; use a folder outside it, or --cache off"
            ));
        }
        Ok(RenderStore { dir: real })
    }

    fn path(&self, key: &[u8; 32]) -> PathBuf {
        let name = hex(key);
        self.dir.join(&name[..2]).join(name)
    }

    /// The output stored for `key`, when an entry is there and checks out; at most `cap`
    /// bytes are read (a larger entry is a miss: helm would have been stopped there too).
    pub fn get(&self, key: &[u8; 32], cap: usize) -> Option<Vec<u8>> {
        let path = self.path(key);
        // A regular file of bounded size, never a link or a device planted in its place.
        let limit = (MAGIC.len() + 64 + 1 + 64 + 1 + 20 + 1 + cap) as u64;
        let bytes = crate::files::read_regular_file(&path, limit).ok()?;
        let rest = bytes.strip_prefix(MAGIC)?;
        let (key_line, rest) = split_line(rest)?;
        let (hash_line, rest) = split_line(rest)?;
        let (len_line, payload) = split_line(rest)?;
        let len: usize = std::str::from_utf8(len_line).ok()?.parse().ok()?;
        let sound = key_line == hex(key).as_bytes()
            && payload.len() == len
            && len <= cap
            && hash_line == hex(&Sha256::digest(payload)).as_bytes();
        if !sound {
            return None;
        }
        // Used now: the trim keeps the entries used last.
        if let Ok(f) = fs::File::options().append(true).open(&path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        Some(payload.to_vec())
    }

    /// Stores `output` for `key`: written to a temporary file beside it, then renamed, so a
    /// reader never sees half an entry. A store that cannot be written is only a slower
    /// next run.
    pub fn put(&self, key: &[u8; 32], output: &[u8]) {
        let path = self.path(key);
        let Some(folder) = path.parent() else {
            return;
        };
        if fs::create_dir_all(folder).is_err() {
            return;
        }
        let Ok(mut tmp) = tempfile::NamedTempFile::new_in(folder) else {
            return;
        };
        let mut entry = Vec::with_capacity(output.len() + 200);
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(hex(key).as_bytes());
        entry.push(b'\n');
        entry.extend_from_slice(hex(&Sha256::digest(output)).as_bytes());
        entry.push(b'\n');
        entry.extend_from_slice(output.len().to_string().as_bytes());
        entry.push(b'\n');
        entry.extend_from_slice(output);
        if tmp.write_all(&entry).is_ok() {
            let _ = tmp.persist(&path);
        }
    }

    /// Removes the entries used longest ago until the folder holds at most `max` bytes.
    pub fn trim(&self, max: u64) {
        let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> =
            walkdir::WalkDir::new(&self.dir)
                .follow_links(false)
                .max_depth(2)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file())
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    Some((meta.modified().ok()?, meta.len(), e.into_path()))
                })
                .collect();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        if total <= max {
            return;
        }
        entries.sort();
        for (_, len, path) in entries {
            if total <= max {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
            }
        }
    }
}

/// `path` made absolute with its existing part's links resolved: the deepest ancestor that
/// exists, canonicalized, then the parts that do not exist yet.
fn resolved(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = fs::canonicalize(existing) {
            let mut out = real;
            out.extend(rest.iter().rev());
            return Ok(out);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return Ok(absolute),
        }
    }
}

fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == b'\n')?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helm() -> Helm {
        Helm {
            path: PathBuf::from("/usr/bin/helm"),
            version: "v3.17.3".into(),
            kube_version: None,
        }
    }

    #[test]
    fn an_entry_is_read_back_only_when_it_checks_out() {
        let cache = tempfile::tempdir().expect("tempdir");
        let repo = tempfile::tempdir().expect("tempdir");
        let store = RenderStore::open(cache.path(), repo.path()).expect("opens");
        let key = store_key(&[7; 32], &helm());
        assert_eq!(store.get(&key, 1 << 20), None);
        store.put(&key, b"---\nkind: ConfigMap\n");
        assert_eq!(
            store.get(&key, 1 << 20).as_deref(),
            Some(&b"---\nkind: ConfigMap\n"[..])
        );
        // Larger than the cap: a miss.
        assert_eq!(store.get(&key, 4), None);
        // Another helm: another key.
        let other = Helm {
            version: "v3.18.0".into(),
            ..helm()
        };
        assert_eq!(store.get(&store_key(&[7; 32], &other), 1 << 20), None);
        // An edited entry is a miss.
        let path = store.path(&key);
        let mut text = fs::read(&path).expect("entry");
        let last = text.len() - 2;
        text[last] = b'X';
        fs::write(&path, text).expect("write");
        assert_eq!(store.get(&key, 1 << 20), None);
    }

    #[test]
    fn a_store_inside_the_repository_is_refused_and_nothing_is_made_there() {
        let repo = tempfile::tempdir().expect("tempdir");
        let e = RenderStore::open(&repo.path().join(".cache"), repo.path()).expect_err("inside");
        assert!(e.contains("inside the scanned repository"), "{e}");
        assert!(!repo.path().join(".cache").exists());
    }

    #[test]
    fn the_trim_removes_the_entries_used_longest_ago() {
        let cache = tempfile::tempdir().expect("tempdir");
        let repo = tempfile::tempdir().expect("tempdir");
        let store = RenderStore::open(cache.path(), repo.path()).expect("opens");
        let old = store_key(&[1; 32], &helm());
        let new = store_key(&[2; 32], &helm());
        store.put(&old, &[b'a'; 1000]);
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options()
            .append(true)
            .open(store.path(&old))
            .and_then(|f| f.set_modified(past))
            .expect("mtime");
        store.put(&new, &[b'b'; 1000]);
        store.trim(1500);
        assert_eq!(store.get(&old, 1 << 20), None);
        assert!(store.get(&new, 1 << 20).is_some());
    }
}

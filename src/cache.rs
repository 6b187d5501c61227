//! The persistent code cache: compiled code kept on disk, so that a new process loads a module
//! it has seen before instead of compiling it again.
//!
//! Loading compiled code runs native code from a file, so no file is trusted blindly:
//!
//! - A file is named `<key>-<checksum>.cwasm`. The key is a BLAKE3 hash of the module's bytes,
//!   the engine (which of the configurations in `engine`, which compiler) and wasmtime's own
//!   compatibility hash of that engine (its version, target, CPU features, settings). The
//!   checksum is the BLAKE3 hash of the whole file. The file itself is a plain wasmtime artifact.
//! - Before use, the open file is checked: a regular file, owned by this user, writable by no one
//!   else, and hashing to the checksum in its name. Then the same open file (not the path again)
//!   is memory-mapped by wasmtime (`Module::deserialize_open_file`, the open-file form of
//!   `deserialize_file`), which refuses artifacts of another wasmtime version or configuration.
//!   A file that fails either check is deleted and the module compiled afresh.
//! - Files are written to a private temporary file and renamed into place, so a reader sees a
//!   whole file or none; processes racing to fill the same entry each rename a complete file.
//!   A file torn by a crash fails its checksum. Files are never modified in place, which
//!   wasmtime's mapping of them requires.
//! - The directory is created private to the user (0700). A directory not owned by the user or
//!   writable by others disables the cache for the process; a file writable by others is not
//!   used. Either is reported once on stderr.
//! - Any failure to read or write (a full or read-only disk, a missing home directory) is
//!   counted and otherwise ignored: the module is compiled as if there were no cache.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use wasmtime::{Engine, Module};

use crate::engine::{Compiler, EngineKind, engine_with};
use crate::error::{SandboxError, SandboxResult};

/// Compiled code the cache can store and load: a core module or a component.
pub trait Artifact: Sized + Clone + 'static {
    /// The engine compiled for when no other is asked for.
    const DEFAULT_KIND: EngineKind;

    /// The process's compiled code of this kind.
    fn memory_cache() -> &'static MemoryCache<Self>;

    /// Refuses bytes of the other kind, saying which class to use.
    fn check_kind(bytes: &[u8]) -> SandboxResult<()>;

    /// Compiles `bytes` for `engine`, the engine of `kind`.
    fn compile(kind: EngineKind, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self>;

    fn serialize(&self) -> wasmtime::Result<Vec<u8>>;

    /// Loads an artifact from `file`.
    ///
    /// # Safety
    /// `file` must hold, byte for byte, what `serialize` wrote (see `load_file`).
    unsafe fn deserialize(engine: &Engine, file: File, path: &Path) -> wasmtime::Result<Self>;
}

impl Artifact for Module {
    const DEFAULT_KIND: EngineKind = EngineKind::Standard;

    fn memory_cache() -> &'static MemoryCache<Self> {
        static MODULES: MemoryCache<Module> = MemoryCache::new();
        &MODULES
    }

    fn check_kind(bytes: &[u8]) -> SandboxResult<()> {
        if crate::component::is_component(bytes) {
            return Err(SandboxError::WrongKind(
                "these bytes are a WebAssembly component, not a core module: load them with `new Component(bytes)` \
                 (or Component.compile / Component.fromFile), not Module or Sandbox"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    fn compile(kind: EngineKind, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        if !kind.takes_snapshots() {
            return Module::new(engine, bytes);
        }
        // Sandboxes reach their state for snapshots through hidden exports of every global,
        // memory and table. Bytes that do not parse compile as given, so wasmtime's own error
        // (with the text format's line and column) is what the user sees.
        let binary = wat::parse_bytes(bytes);
        match binary.as_deref().ok().map(crate::store::expose_state::expose_state) {
            // A function body the rewrite does not check may still be invalid: the error then
            // comes from the bytes as given, with their own offsets.
            Some(Ok(Some((exposed, _)))) => Module::new(engine, exposed).or_else(|_| Module::new(engine, bytes)),
            _ => Module::new(engine, bytes),
        }
    }
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Module::serialize(self)
    }

    unsafe fn deserialize(engine: &Engine, file: File, _path: &Path) -> wasmtime::Result<Self> {
        // SAFETY: forwarded from the caller.
        unsafe { Module::deserialize_open_file(engine, file) }
    }
}

impl Artifact for wasmtime::component::Component {
    const DEFAULT_KIND: EngineKind = EngineKind::Component;

    fn memory_cache() -> &'static MemoryCache<Self> {
        static COMPONENTS: MemoryCache<wasmtime::component::Component> = MemoryCache::new();
        &COMPONENTS
    }

    fn check_kind(bytes: &[u8]) -> SandboxResult<()> {
        if crate::component::is_core_module(bytes) {
            return Err(SandboxError::WrongKind(
                "these bytes are a core WebAssembly module, not a component: load them with `new Module(bytes)` \
                 or `new Sandbox(bytes)`, not Component"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    fn compile(_: EngineKind, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        wasmtime::component::Component::new(engine, bytes)
    }
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        wasmtime::component::Component::serialize(self)
    }

    unsafe fn deserialize(engine: &Engine, file: File, path: &Path) -> wasmtime::Result<Self> {
        // Components have no open-file form: map the file by its path, once that path is still
        // the very file just checked (same device and inode; replacements are renamed over it,
        // never written in place, in a directory only this user can write).
        if !same_file(&file, path) {
            return Err(wasmtime::Error::msg("the cache file was replaced while being loaded"));
        }
        // SAFETY: forwarded from the caller.
        unsafe { wasmtime::component::Component::deserialize_file(engine, path) }
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino() && named.is_file(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|named| named.is_file())
}

/// Environment variable naming the cache directory.
pub const CACHE_DIR_VARIABLE: &str = "WASM_MEMORY_SANDBOX_CACHE_DIR";
/// Environment variable that turns the cache off when `0` (or `false`, `off`, `no`).
pub const CACHE_VARIABLE: &str = "WASM_MEMORY_SANDBOX_CACHE";

/// Name of the cache's folder inside the platform's user cache directory.
const FOLDER: &str = "wasm-memory-sandbox";
/// Bumped when the naming or keying of files changes.
const FORMAT: &str = "wasm-memory-sandbox code cache v3 (modules with their state and start function exposed)";
const EXTENSION: &str = ".cwasm";
const TEMPORARY_PREFIX: &str = ".tmp-";
/// Temporary files older than this are left over by a crashed process and removed.
const STALE_TEMPORARY: Duration = Duration::from_secs(3600);
/// Hex digits of a BLAKE3 hash.
const HASH_HEX: usize = 64;

/// Counters of what the cache did in this process.
#[cfg_attr(test, allow(dead_code))] // read by `codeCacheStats()`, registered only outside `cfg(test)`
#[derive(Debug, Default, Clone, Copy)]
pub struct CacheStats {
    /// Modules loaded from a cache file.
    pub hits: u64,
    /// Modules not found in the cache (and so compiled).
    pub misses: u64,
    /// Cache files written.
    pub writes: u64,
    /// Cache files found damaged or foreign (wrong checksum, refused by wasmtime) and deleted.
    pub rejected: u64,
    /// Cache files not used because someone else could have written them.
    pub untrusted: u64,
    /// Cache files that could not be written (full or read-only disk, ...).
    pub write_failures: u64,
}

static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);
static WRITES: AtomicU64 = AtomicU64::new(0);
static REJECTED: AtomicU64 = AtomicU64::new(0);
static UNTRUSTED: AtomicU64 = AtomicU64::new(0);
static WRITE_FAILURES: AtomicU64 = AtomicU64::new(0);

#[cfg_attr(test, allow(dead_code))] // read by `codeCacheStats()`, registered only outside `cfg(test)`
pub fn stats() -> CacheStats {
    CacheStats {
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
        writes: WRITES.load(Ordering::Relaxed),
        rejected: REJECTED.load(Ordering::Relaxed),
        untrusted: UNTRUSTED.load(Ordering::Relaxed),
        write_failures: WRITE_FAILURES.load(Ordering::Relaxed),
    }
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The cache directory this process uses, or `None` if the cache is off or unusable (decided
/// once, at the first compile).
pub fn directory() -> Option<&'static Path> {
    static DIRECTORY: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIRECTORY.get_or_init(open_directory).as_deref()
}

fn open_directory() -> Option<PathBuf> {
    if std::env::var(CACHE_VARIABLE)
        .is_ok_and(|value| matches!(value.trim().to_ascii_lowercase().as_str(), "0" | "false" | "off" | "no"))
    {
        return None;
    }
    let directory = match std::env::var_os(CACHE_DIR_VARIABLE).filter(|value| !value.is_empty()) {
        Some(directory) => PathBuf::from(directory),
        None => directories::BaseDirs::new()?.cache_dir().join(FOLDER),
    };
    // A location that cannot be created (read-only, no home directory): compile without a
    // cache, silently.
    create_private_directory(&directory).ok()?;
    match check_private(&fs::metadata(&directory).ok()?, true) {
        Ok(()) => Some(directory),
        Err(reason) => {
            warn_once(&format!(
                "the code cache directory {} is not used: {reason}; modules are compiled without it",
                directory.display()
            ));
            None
        }
    }
}

#[cfg(unix)]
fn create_private_directory(directory: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(directory)
}

#[cfg(not(unix))]
fn create_private_directory(directory: &Path) -> io::Result<()> {
    fs::create_dir_all(directory)
}

/// Whether a cache directory or file can be trusted: owned by this user and writable by no
/// one else. (On Windows the per-user local application data folder is private already.)
#[cfg(unix)]
fn check_private(metadata: &fs::Metadata, directory: bool) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if directory && !metadata.is_dir() {
        return Err("it is not a directory".to_owned());
    }
    if !directory && !metadata.is_file() {
        return Err("it is not a regular file".to_owned());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let user = unsafe { libc::geteuid() };
    if metadata.uid() != user {
        return Err(format!(
            "it is owned by user {}, not by this user ({user})",
            metadata.uid()
        ));
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(format!(
            "it is writable by other users (mode {:o})",
            metadata.mode() & 0o7777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(metadata: &fs::Metadata, directory: bool) -> Result<(), String> {
    if directory != metadata.is_dir() {
        return Err("it is not what it should be (a file or a directory)".to_owned());
    }
    Ok(())
}

/// Prints `message` on stderr, the first time only.
fn warn_once(message: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!("wasm-memory-sandbox: warning: {message}");
    }
}

/// Feeds a `std::hash::Hash` value (wasmtime's engine compatibility hash) into BLAKE3.
struct Blake3Hasher<'a>(&'a mut blake3::Hasher);

impl std::hash::Hasher for Blake3Hasher<'_> {
    fn finish(&self) -> u64 {
        unreachable!("only written to")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Inputs above this size are hashed on all cores.
const PARALLEL_HASH_BYTES: usize = 1 << 20;

fn hash_into(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    if bytes.len() >= PARALLEL_HASH_BYTES {
        hasher.update_rayon(bytes);
    } else {
        hasher.update(bytes);
    }
}

fn hash(bytes: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    hash_into(&mut hasher, bytes);
    hasher.finalize()
}

/// The key of `bytes` compiled by `engine`, which the caller names (`engine_name`).
fn key(engine: &Engine, engine_name: &str, bytes: &[u8]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(FORMAT.as_bytes());
    hasher.update(&[0]);
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.update(&[0]);
    hasher.update(engine_name.as_bytes());
    hasher.update(&[0]);
    engine
        .precompile_compatibility_hash()
        .hash(&mut Blake3Hasher(&mut hasher));
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hash_into(&mut hasher, bytes);
    hasher.finalize().to_hex().to_string()
}

/// Returns `bytes` compiled by `engine`, from the disk cache if a valid file is there, else
/// compiled by `compile` and stored. `engine_name` names the engine's configuration.
pub fn load_or_compile<A: Artifact>(
    engine: &Engine,
    engine_name: &str,
    bytes: &[u8],
    compile: impl FnOnce() -> wasmtime::Result<A>,
) -> wasmtime::Result<A> {
    let Some(directory) = directory() else {
        return compile();
    };
    let key = key(engine, engine_name, bytes);
    if let Some(module) = load(engine, directory, &key) {
        count(&HITS);
        return Ok(module);
    }
    count(&MISSES);
    let module = compile()?;
    match store(directory, &key, &module) {
        Ok(()) => count(&WRITES),
        Err(_) => count(&WRITE_FAILURES),
    }
    Ok(module)
}

/// The first valid cache file for `key`, deleting damaged ones on the way.
fn load<A: Artifact>(engine: &Engine, directory: &Path, key: &str) -> Option<A> {
    let entries = fs::read_dir(directory).ok()?;
    let prefix = format!("{key}-");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(checksum) = name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(EXTENSION)) {
            if let Some(module) = load_file(engine, &entry.path(), checksum) {
                return Some(module);
            }
        } else if name.starts_with(TEMPORARY_PREFIX) {
            remove_if_stale(&entry.path());
        }
    }
    None
}

/// Loads one cache file if it is trustworthy and intact; deletes it if it is damaged.
fn load_file<A: Artifact>(engine: &Engine, path: &Path, checksum: &str) -> Option<A> {
    let file = open_read_only(path).ok()?;
    let metadata = file.metadata().ok()?;
    if let Err(reason) = check_private(&metadata, false) {
        count(&UNTRUSTED);
        warn_once(&format!("the code cache file {} is not used: {reason}", path.display()));
        return None;
    }
    if checksum.len() != HASH_HEX || !file_checksum_matches(&file, checksum) {
        reject(path);
        return None;
    }
    // SAFETY: the file is a regular file owned by this user and writable by no one else, and its
    // contents hash to the checksum it was written with, so it is, byte for byte, an artifact
    // this package wrote with `Module::serialize`: the input `deserialize_open_file` requires.
    // It is the same open file that was hashed, not the path opened again. Cache files are never
    // modified in place (replacements are renamed over them, leaving this inode intact), as the
    // mapping requires. wasmtime itself refuses artifacts of another version or configuration.
    match unsafe { A::deserialize(engine, file, path) } {
        Ok(module) => Some(module),
        Err(_) => {
            reject(path);
            None
        }
    }
}

#[cfg(unix)]
fn open_read_only(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Never follow a symbolic link planted in the directory.
    OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)
}

#[cfg(not(unix))]
fn open_read_only(path: &Path) -> io::Result<File> {
    File::open(path)
}

fn file_checksum_matches(file: &File, checksum: &str) -> bool {
    let length = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    if length == 0 {
        return false;
    }
    // SAFETY: the mapping is read-only, only read here, and dropped before the file is used
    // again; the file is private to this user and never modified in place (see `load_file`).
    let Ok(mapped) = (unsafe { memmap2::Mmap::map(file) }) else {
        return false;
    };
    hash(&mapped).to_hex().as_str() == checksum
}

/// A damaged or foreign file: deleted, so that the fresh compile's file replaces it.
fn reject(path: &Path) {
    count(&REJECTED);
    let _ = fs::remove_file(path);
}

fn remove_if_stale(path: &Path) {
    let stale = fs::symlink_metadata(path)
        .and_then(|metadata| metadata.modified())
        .is_ok_and(|modified| {
            SystemTime::now()
                .duration_since(modified)
                .is_ok_and(|age| age > STALE_TEMPORARY)
        });
    if stale {
        let _ = fs::remove_file(path);
    }
}

/// Writes `module`'s artifact as `<key>-<checksum>.cwasm`.
fn store<A: Artifact>(directory: &Path, key: &str, module: &A) -> io::Result<()> {
    let artifact = module.serialize().map_err(io::Error::other)?;
    store_file(directory, key, EXTENSION, &artifact)
}

/// Writes `contents` as `<key>-<checksum><extension>`: into a new private temporary file, then
/// renamed into place.
fn store_file(directory: &Path, key: &str, extension: &str, contents: &[u8]) -> io::Result<()> {
    let checksum = hash(contents);
    let path = directory.join(format!("{key}-{}{extension}", checksum.to_hex()));
    let temporary = directory.join(temporary_name());
    let written = create_private_file(&temporary)
        .and_then(|mut file| file.write_all(contents))
        .and_then(|()| fs::rename(&temporary, &path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// The extension of cached wasm bytes (pre-initialized modules).
const BYTES_EXTENSION: &str = ".wasm";

/// Wasm bytes for the key `parts` (what made them: the input and every option that changes
/// the output), from the disk cache if a valid file is there, else made by `make` and stored.
/// Pre-initialized modules come from here, so a fresh process gets them without running the
/// initializer again.
pub fn load_or_make_bytes(parts: &[&[u8]], make: impl FnOnce() -> SandboxResult<Vec<u8>>) -> SandboxResult<Vec<u8>> {
    let Some(directory) = directory() else {
        return make();
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update(FORMAT.as_bytes());
    hasher.update(&[0]);
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hash_into(&mut hasher, part);
    }
    let key = hasher.finalize().to_hex().to_string();
    if let Some(bytes) = load_bytes(directory, &key) {
        count(&HITS);
        return Ok(bytes);
    }
    count(&MISSES);
    let bytes = make()?;
    match store_file(directory, &key, BYTES_EXTENSION, &bytes) {
        Ok(()) => count(&WRITES),
        Err(_) => count(&WRITE_FAILURES),
    }
    Ok(bytes)
}

/// The contents of the first valid bytes file for `key`, deleting damaged ones on the way.
fn load_bytes(directory: &Path, key: &str) -> Option<Vec<u8>> {
    let prefix = format!("{key}-");
    for entry in fs::read_dir(directory).ok()?.flatten() {
        let name = entry.file_name();
        let Some(checksum) = name
            .to_str()
            .and_then(|name| name.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(BYTES_EXTENSION))
        else {
            continue;
        };
        let path = entry.path();
        let Ok(mut file) = open_read_only(&path) else { continue };
        let Ok(metadata) = file.metadata() else { continue };
        if let Err(reason) = check_private(&metadata, false) {
            count(&UNTRUSTED);
            warn_once(&format!("the code cache file {} is not used: {reason}", path.display()));
            continue;
        }
        let mut contents = Vec::new();
        if file.read_to_end(&mut contents).is_ok() && hash(&contents).to_hex().as_str() == checksum {
            return Some(contents);
        }
        reject(&path);
    }
    None
}

fn temporary_name() -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{TEMPORARY_PREFIX}{}-{}-{nanos}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// How many distinct compiled modules (or components) the process keeps for reuse.
const MEMORY_CACHE_CAPACITY: usize = 64;

/// A quick digest of source bytes: the in-memory cache's first comparison.
pub fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

struct MemoryEntry<A> {
    kind: EngineKind,
    compiler: Compiler,
    digest: u64,
    bytes: Arc<[u8]>,
    artifact: A,
}

/// Code compiled in this process, kept for reuse, above the disk cache.
pub struct MemoryCache<A> {
    entries: Mutex<VecDeque<MemoryEntry<A>>>,
}

impl<A: Artifact + Clone> MemoryCache<A> {
    pub const fn new() -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// Looks the bytes up (comparing them in full, not just the digest), then on disk, else
    /// compiles them with `compile`. Compilation runs outside the lock so other threads are
    /// not held up.
    pub fn get_or_compile(
        &self,
        kind: EngineKind,
        compiler: Compiler,
        bytes: &Arc<[u8]>,
        digest: u64,
        compile: impl FnOnce(&Engine) -> wasmtime::Result<A>,
    ) -> SandboxResult<A> {
        let lookup = |entries: &VecDeque<MemoryEntry<A>>| {
            entries
                .iter()
                .find(|entry| {
                    entry.kind == kind
                        && entry.compiler == compiler
                        && entry.digest == digest
                        && *entry.bytes == **bytes
                })
                .map(|entry| entry.artifact.clone())
        };
        if let Some(artifact) = lookup(&self.entries.lock().unwrap_or_else(|poison| poison.into_inner())) {
            return Ok(artifact);
        }
        let engine = engine_with(kind, compiler).map_err(|error| match (compiler, error) {
            (Compiler::Winch, SandboxError::Internal(reason)) => SandboxError::Unsupported(format!(
                "the Winch compiler is not available on this platform: {reason}"
            )),
            (_, error) => error,
        })?;
        let engine_name = format!("{}-{}", kind.name(), compiler.name());
        let artifact = load_or_compile(engine, &engine_name, bytes, || compile(engine))
            .map_err(|error| SandboxError::Compile(format!("{error:#}")))?;
        let mut entries = self.entries.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(raced) = lookup(&entries) {
            return Ok(raced);
        }
        if entries.len() == MEMORY_CACHE_CAPACITY {
            entries.pop_front();
        }
        entries.push_back(MemoryEntry {
            kind,
            compiler,
            digest,
            bytes: Arc::clone(bytes),
            artifact: artifact.clone(),
        });
        Ok(artifact)
    }
}

/// A module's or component's source (wasm bytes or text, as given), with its code compiled for
/// one engine. Code for another engine is compiled on demand and shared through the caches.
#[derive(Clone)]
pub struct CompiledSource<A> {
    bytes: Arc<[u8]>,
    digest: u64,
    kind: EngineKind,
    compiler: Compiler,
    compiled: A,
}

impl<A: Artifact> CompiledSource<A> {
    /// Compiles `bytes` for the engine of `kind` and `compiler`, reusing earlier compilations
    /// of the same bytes (in this process, or in the disk cache).
    pub fn compile_for(kind: EngineKind, compiler: Compiler, bytes: &[u8]) -> SandboxResult<Self> {
        let bytes: Arc<[u8]> = Arc::from(bytes);
        let digest = digest(&bytes);
        let compiled = Self::compile_cached(kind, compiler, &bytes, digest)?;
        Ok(Self {
            bytes,
            digest,
            kind,
            compiler,
            compiled,
        })
    }

    /// `compile_for` the kind's default engine.
    pub fn compile_with(compiler: Compiler, bytes: &[u8]) -> SandboxResult<Self> {
        Self::compile_for(A::DEFAULT_KIND, compiler, bytes)
    }

    /// The code compiled for the engine of `kind` (with this source's compiler).
    pub fn for_engine(&self, kind: EngineKind) -> SandboxResult<A> {
        if kind == self.kind {
            Ok(self.compiled.clone())
        } else {
            Self::compile_cached(kind, self.compiler, &self.bytes, self.digest)
        }
    }

    /// The compiler this source's code is compiled with.
    pub fn compiler(&self) -> Compiler {
        self.compiler
    }

    /// The engine this source's code was compiled for.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Whether `other` was compiled from the same bytes (for any engine or compiler).
    pub fn same_bytes(&self, other: &Self) -> bool {
        self.digest == other.digest && (Arc::ptr_eq(&self.bytes, &other.bytes) || self.bytes == other.bytes)
    }

    /// The code as compiled for this source's own engine.
    pub fn compiled(&self) -> &A {
        &self.compiled
    }

    fn compile_cached(kind: EngineKind, compiler: Compiler, bytes: &Arc<[u8]>, digest: u64) -> SandboxResult<A> {
        A::check_kind(bytes)?;
        A::memory_cache().get_or_compile(kind, compiler, bytes, digest, |engine| A::compile(kind, engine, bytes))
    }
}

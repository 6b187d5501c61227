//! Linear memories whose contents can be captured into an immutable copy-on-write image and put
//! back cheaply: the host memories of the engines that take snapshots (`Config::with_host_memory`).
//!
//! A [`MemoryImage`] is a sealed memfd. A [`SnapshotMemory`] is one address-space reservation whose
//! base never moves; "end(x)" below is x rounded up to a host page:
//! - `[0, end(size))` is readable and writable. When the memory has a base image (the one it last
//!   captured or restored), `[0, end(image.len))` maps it: the image's data MAP_PRIVATE from the
//!   memfd, the large holes between the data as anonymous memory (reading a hole of a memfd would
//!   allocate a page in it). A write there leaves a private anonymous page, so the pages written
//!   since are exactly the present ones that are not file-backed (`PAGEMAP_SCAN` finds them), and
//!   dropping the private pages of the 2 MiB regions that hold them (`MADV_DONTNEED`) makes the
//!   memory read the image there again (and lets the kernel free those regions' page tables,
//!   which the next scan then skips).
//! - `[end(size), capacity + guard)` is PROT_NONE anonymous memory that nobody has accessed since it
//!   was mapped, so growing is an `mprotect` and the new pages read as zeros. A restore to a smaller
//!   image maps fresh PROT_NONE memory over what it gives back.
//!
//! Nothing here runs the guest: callers capture and restore only while the guest is not running
//! (the memory is not shared, and the store is not in a call).

use std::collections::BTreeMap;
use std::ffi::c_int;
use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

/// Holes in an image shorter than this are mapped from the memfd with the data around them (a
/// read there allocates at most this much in the image, once for all its forks); longer ones are
/// mapped anonymous, which costs a mapping each.
const MIN_ANONYMOUS_HOLE: usize = 256 << 10;
/// At most this many file mappings per image, so that a fragmented image cannot use up the
/// process's mappings (`vm.max_map_count`) across many forks: only the largest holes get their own.
const MAX_FILE_SEGMENTS: usize = 64;

/// `MFD_NOEXEC_SEAL` (linux/memfd.h, Linux 6.3): not in the libc crate yet.
const MFD_NOEXEC_SEAL: libc::c_uint = 0x0008;

/// The host page size: 4 KiB on x86_64, 4, 16 or 64 KiB on arm64.
fn page_size() -> usize {
    static PAGE_SIZE: OnceLock<usize> = OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        // SAFETY: sysconf only reads a system constant.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size)
            .ok()
            .filter(|size| size.is_power_of_two())
            .unwrap_or(4096)
    })
}

/// `bytes` rounded up to a host page, if that fits a usize.
fn page_align(bytes: usize) -> Option<usize> {
    bytes.checked_next_multiple_of(page_size())
}

/// The last OS error, with what was being done.
fn os_error(context: &str) -> io::Error {
    let error = io::Error::last_os_error();
    io::Error::new(error.kind(), format!("{context}: {error}"))
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// The span of address space one page table covers (a PMD entry on x86-64 and arm64 with 4 KiB
/// pages).
const PAGE_TABLE_SPAN: usize = 2 << 20;

/// The regions of a memory at address `base` that cover the `written` ranges (sorted, offsets
/// from `base`), each the part below `end` of one `PAGE_TABLE_SPAN` of the address space, in
/// order and without repeats.
fn page_table_regions(base: usize, written: &[Range<usize>], end: usize) -> Vec<Range<usize>> {
    let mut regions: Vec<Range<usize>> = Vec::new();
    for range in written {
        let first = (base + range.start) / PAGE_TABLE_SPAN;
        let last = (base + range.end.min(end).max(range.start + 1) - 1) / PAGE_TABLE_SPAN;
        for span in first..=last {
            let start = (span * PAGE_TABLE_SPAN).saturating_sub(base);
            let region = start..((span + 1) * PAGE_TABLE_SPAN - base).min(end);
            if !region.is_empty() && regions.last().is_none_or(|last| last.end <= region.start) {
                push_joined(&mut regions, region);
            }
        }
    }
    regions
}

/// Sorts `ranges` and joins those that overlap or touch.
fn union(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_unstable_by_key(|range| range.start);
    let mut joined: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        push_joined(&mut joined, range);
    }
    joined
}

/// Appends `range` to sorted, disjoint `ranges` (it must not start before the last one does).
fn push_joined(ranges: &mut Vec<Range<usize>>, range: Range<usize>) {
    if range.is_empty() {
        return;
    }
    match ranges.last_mut() {
        Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
        _ => ranges.push(range),
    }
}

/// Whether every byte of `bytes` is zero. No early exit inside: this way it vectorizes.
fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0, |any, byte| any | byte) == 0
}

/// An immutable memory image: a sealed memfd holding `len` bytes (its size is `len` rounded up to a
/// host page); pages that were zero when it was captured are holes.
pub struct MemoryImage {
    file: File,
    len: usize,
    /// `len` rounded up to a host page: the memfd's size and what a restore maps.
    mapped_len: usize,
    /// Page-aligned, sorted, disjoint: the pages that hold data (all others are zero).
    data_runs: Vec<Range<usize>>,
    /// Page-aligned, sorted, disjoint: what a memory maps from the memfd (`data_runs` joined over
    /// small holes); the rest of `[0, mapped_len)` is mapped anonymous.
    file_segments: Vec<Range<usize>>,
    stored_bytes: usize,
}

/// A memory's size and copies of its pages that hold data (see `SnapshotMemory::copy_pages`).
pub struct PageCopy {
    len: usize,
    pages: Vec<(usize, Box<[u8]>)>,
}

impl MemoryImage {
    /// The image of a memory's page copies.
    pub fn from_page_copy(copy: &PageCopy) -> io::Result<Self> {
        let mut contents = vec![0u8; copy.len];
        let mut candidates: Vec<Range<usize>> = Vec::with_capacity(copy.pages.len());
        for (offset, bytes) in &copy.pages {
            contents[*offset..offset + bytes.len()].copy_from_slice(bytes);
            push_joined(&mut candidates, *offset..offset + page_size());
        }
        Self::capture_from(&contents, &candidates)
    }

    /// An image of `bytes` (all-zero pages are left as holes).
    #[allow(clippy::single_range_in_vec_init)] // one range to look at: all of it
    #[allow(dead_code, reason = "images built from data: tests, and embedders that need them")]
    pub fn from_bytes(bytes: &[u8]) -> io::Result<Self> {
        let end = page_align(bytes.len()).ok_or_else(|| invalid_input("image too large".to_owned()))?;
        Self::capture_from(bytes, &[0..end])
    }

    /// The image of `contents`, looking for data only in the page-aligned, sorted, disjoint
    /// `candidates` (every other page of `contents` must be zero).
    fn capture_from(contents: &[u8], candidates: &[Range<usize>]) -> io::Result<Self> {
        let page = page_size();
        let len = contents.len();
        let mapped_len = page_align(len).ok_or_else(|| invalid_input("image too large".to_owned()))?;
        let mut data_runs: Vec<Range<usize>> = Vec::new();
        for candidate in candidates {
            let mut offset = candidate.start;
            while offset < candidate.end.min(len) {
                let page_end = (offset + page).min(len);
                if !is_zero(&contents[offset..page_end]) {
                    push_joined(&mut data_runs, offset..offset + page);
                }
                offset += page;
            }
        }
        let file = create_memfd()?;
        file.set_len(mapped_len as u64)
            .map_err(|error| io::Error::new(error.kind(), format!("sizing a memory image to {len} bytes: {error}")))?;
        for run in &data_runs {
            file.write_all_at(&contents[run.start..run.end.min(len)], run.start as u64)
                .map_err(|error| io::Error::new(error.kind(), format!("writing a memory image: {error}")))?;
        }
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
        // SAFETY: F_ADD_SEALS on a memfd this function owns; the argument is an integer.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(os_error("sealing a memory image"));
        }
        // What was written: the runs, counted here rather than asked of the file (three system
        // calls at least, in every snapshot).
        let stored_bytes = data_runs.iter().map(|run| run.end.min(len) - run.start).sum();
        let file_segments = file_segments(&data_runs);
        Ok(MemoryImage {
            file,
            len,
            mapped_len,
            data_runs,
            file_segments,
            stored_bytes,
        })
    }

    /// Its size in bytes: the byte size of a memory restored to it.
    pub fn len(&self) -> usize {
        self.len
    }

    #[allow(dead_code, reason = "the pair of `len`")]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the image.
    #[allow(dead_code, reason = "for tests and debugging")]
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        if offset.checked_add(buf.len()).is_none_or(|end| end > self.len) {
            return Err(invalid_input(format!(
                "reading {} bytes at {offset} from a memory image of {} bytes",
                buf.len(),
                self.len
            )));
        }
        self.file
            .read_exact_at(buf, offset as u64)
            .map_err(|error| io::Error::new(error.kind(), format!("reading a memory image: {error}")))
    }

    /// Bytes of data the image holds (its holes excluded), as counted by `SEEK_DATA`/`SEEK_HOLE`
    /// when it was sealed. Counted once: a guest reading a small hole through a mapping later
    /// allocates a zero page in the memfd, and that should not change what a snapshot reports.
    pub fn stored_bytes(&self) -> usize {
        self.stored_bytes
    }
}

impl fmt::Debug for MemoryImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryImage")
            .field("fd", &self.file.as_raw_fd())
            .field("len", &self.len)
            .field("stored_bytes", &self.stored_bytes)
            .field("file_segments", &self.file_segments.len())
            .finish()
    }
}

/// A new memfd that can be sealed, closed on exec.
fn create_memfd() -> io::Result<File> {
    const NAME: &std::ffi::CStr = c"wasm-memory-image";
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // Not executable, sealed so: also what `vm.memfd_noexec = 2` requires.
    // SAFETY: NAME is NUL-terminated and outlives the call.
    let mut fd = unsafe { libc::memfd_create(NAME.as_ptr(), flags | MFD_NOEXEC_SEAL) };
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // Before Linux 6.3 the flag is unknown.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(NAME.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(os_error("creating a memory image (memfd_create)"));
    }
    // SAFETY: memfd_create just returned this descriptor; nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Bytes of `file` that are data rather than holes.
#[cfg(test)]
fn data_bytes(file: &File) -> io::Result<usize> {
    let fd = file.as_raw_fd();
    let mut total = 0;
    let mut offset: libc::off_t = 0;
    loop {
        // SAFETY: lseek on a descriptor `file` owns; it only moves the file offset, which nothing
        // else uses (reads are positioned).
        let data = unsafe { libc::lseek(fd, offset, libc::SEEK_DATA) };
        if data < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
                return Ok(total); // no data after `offset`
            }
            return Err(os_error("measuring a memory image (SEEK_DATA)"));
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(os_error("measuring a memory image (SEEK_HOLE)"));
        }
        total += usize::try_from(hole - data).unwrap_or(0);
        offset = hole;
    }
}

/// What to map from the memfd: `data_runs` joined over holes shorter than `MIN_ANONYMOUS_HOLE`,
/// and over all but the `MAX_FILE_SEGMENTS - 1` largest holes.
fn file_segments(data_runs: &[Range<usize>]) -> Vec<Range<usize>> {
    let (Some(first), Some(last)) = (data_runs.first(), data_runs.last()) else {
        return Vec::new();
    };
    // (hole length, index of the run after it)
    let mut holes: Vec<(usize, usize)> = data_runs
        .windows(2)
        .enumerate()
        .map(|(index, pair)| (pair[1].start - pair[0].end, index + 1))
        .filter(|&(hole, _)| hole >= MIN_ANONYMOUS_HOLE)
        .collect();
    holes.sort_unstable_by_key(|&(hole, _)| std::cmp::Reverse(hole));
    holes.truncate(MAX_FILE_SEGMENTS - 1);
    let mut splits: Vec<usize> = holes.into_iter().map(|(_, index)| index).collect();
    splits.sort_unstable();
    let mut segments = Vec::with_capacity(splits.len() + 1);
    let mut start = first.start;
    for index in splits {
        segments.push(start..data_runs[index - 1].end);
        start = data_runs[index].start;
    }
    segments.push(start..last.end);
    segments
}

/// Where a memory's bytes come from (see the module documentation).
enum Layout {
    /// Anonymous memory only: nothing captured or restored yet.
    Anonymous,
    /// `[0, end(image.len))` maps `image`; past it, anonymous memory.
    Image(Arc<MemoryImage>),
    /// A remap failed halfway, so which pages come from which image is not known: the next
    /// capture reads every page, the next restore maps the whole image again.
    Unknown,
    /// Even undoing a failed remap failed: the pages past the size may not be zero any more, so
    /// every further change is refused.
    Broken,
}

/// One wasm linear memory: a reservation of `capacity + guard` bytes whose first `size` bytes are
/// accessible; its state can be captured into a [`MemoryImage`] and put back.
pub struct SnapshotMemory {
    base: NonNull<u8>,
    /// Bytes mapped at `base`: capacity plus guard (at least a page, so `base` is never null).
    mapping_len: usize,
    /// Page-aligned; the size never exceeds it, and the base never moves.
    capacity: usize,
    size: usize,
    maximum: Option<usize>,
    layout: Layout,
}

// SAFETY: the raw base pointer refers to a mapping this value owns alone and frees on drop; nothing
// in it is tied to a thread.
unsafe impl Send for SnapshotMemory {}

impl fmt::Debug for SnapshotMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let layout = match &self.layout {
            Layout::Anonymous => "anonymous",
            Layout::Image(_) => "image",
            Layout::Unknown => "unknown",
            Layout::Broken => "broken",
        };
        f.debug_struct("SnapshotMemory")
            .field("base", &self.base)
            .field("size", &self.size)
            .field("capacity", &self.capacity)
            .field("maximum", &self.maximum)
            .field("layout", &layout)
            .finish()
    }
}

impl SnapshotMemory {
    /// A memory of `minimum` zero bytes, growable up to `maximum` (if any) within a reservation of
    /// `reserved` bytes (default: `maximum`, else `minimum`; at least `minimum`), followed by
    /// `guard` bytes that are never accessible. Growth beyond the reservation fails: the base
    /// never moves.
    pub fn new(minimum: usize, maximum: Option<usize>, reserved: Option<usize>, guard: usize) -> io::Result<Self> {
        if let Some(maximum) = maximum
            && maximum < minimum
        {
            return Err(invalid_input(format!(
                "a memory's maximum ({maximum} bytes) is below its minimum ({minimum} bytes)"
            )));
        }
        let too_large = || {
            invalid_input(format!(
                "a memory reservation of {reserved:?} + {guard} bytes is too large"
            ))
        };
        let capacity = page_align(reserved.unwrap_or(maximum.unwrap_or(minimum)).max(minimum)).ok_or_else(too_large)?;
        let mapping_len = capacity
            .checked_add(page_align(guard).ok_or_else(too_large)?)
            .ok_or_else(too_large)?
            .max(page_size());
        // SAFETY: a new mapping at an address the kernel picks: no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapping_len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(os_error(&format!("reserving {mapping_len} bytes for a memory")));
        }
        // Without MAP_FIXED the kernel never maps page 0.
        let base = NonNull::new(base.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned address 0"))?;
        let mut memory = SnapshotMemory {
            base,
            mapping_len,
            capacity,
            size: 0,
            maximum,
            layout: Layout::Anonymous,
        };
        memory.grow_to(minimum)?;
        Ok(memory)
    }

    /// A new memory whose contents are `image` (a fork: its pages are shared copy-on-write),
    /// reserving `reserved` bytes (default: `maximum`, else the image's size).
    #[allow(
        dead_code,
        reason = "wasmtime creates memories itself; for tests and other embedders"
    )]
    pub fn from_image(
        image: &Arc<MemoryImage>,
        maximum: Option<usize>,
        reserved: Option<usize>,
        guard: usize,
    ) -> io::Result<Self> {
        let reserved = reserved.unwrap_or(maximum.unwrap_or(image.len()));
        let mut memory = Self::new(0, maximum, Some(reserved), guard)?;
        memory.restore(image)?;
        Ok(memory)
    }

    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Accessible bytes.
    pub fn byte_size(&self) -> usize {
        self.size
    }

    /// Bytes of the reservation (without the guard): the size it can grow to without moving.
    pub fn byte_capacity(&self) -> usize {
        self.capacity
    }

    /// The image this memory last captured or was restored to, if its mapping is intact.
    #[allow(dead_code, reason = "for tests and debugging")]
    pub fn base_image(&self) -> Option<&Arc<MemoryImage>> {
        match &self.layout {
            Layout::Image(image) => Some(image),
            _ => None,
        }
    }

    /// Makes `[size, new_size)` accessible; it reads as zeros.
    pub fn grow_to(&mut self, new_size: usize) -> io::Result<()> {
        self.ensure_usable()?;
        if new_size < self.size {
            return Err(invalid_input(format!(
                "a memory cannot shrink from {} to {new_size} bytes",
                self.size
            )));
        }
        if new_size > self.capacity {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "cannot grow a memory to {new_size} bytes: its reservation holds {} bytes",
                    self.capacity
                ),
            ));
        }
        if let Some(maximum) = self.maximum
            && new_size > maximum
        {
            return Err(invalid_input(format!(
                "cannot grow a memory to {new_size} bytes: its maximum is {maximum} bytes"
            )));
        }
        let from = self.accessible_end();
        let to = new_size.next_multiple_of(page_size()); // at most `capacity`, which is aligned
        // The pages past the size were never accessed since they were mapped: they are zeros.
        self.protect(from..to, libc::PROT_READ | libc::PROT_WRITE)?;
        self.size = new_size;
        Ok(())
    }

    /// Captures the contents into a new image, and makes it this memory's base image (mapped in
    /// place of the memory's own pages, which are freed), so that restoring it later is cheap.
    /// Copies of the pages that hold data, kept on the heap: the state of a memory for an image
    /// that may never be needed (`MemoryImage::from_page_copy` makes it), at the cost of one
    /// `PAGEMAP_SCAN` and the copies, without the memfd's system calls.
    pub fn copy_pages(&self) -> io::Result<PageCopy> {
        self.ensure_usable()?;
        let end = self.accessible_end();
        #[allow(clippy::single_range_in_vec_init)]
        let candidates = match (&self.layout, self.private_pages(end)) {
            (Layout::Anonymous, Some(private)) => private,
            _ => vec![0..end],
        };
        let contents = self.contents();
        let page = page_size();
        let mut pages = Vec::new();
        for candidate in &candidates {
            let mut offset = candidate.start;
            while offset < candidate.end.min(contents.len()) {
                let bytes = &contents[offset..(offset + page).min(contents.len())];
                if !is_zero(bytes) {
                    pages.push((offset, Box::from(bytes)));
                }
                offset += page;
            }
        }
        Ok(PageCopy { len: self.size, pages })
    }

    pub fn capture(&mut self) -> io::Result<Arc<MemoryImage>> {
        self.ensure_usable()?;
        let end = self.accessible_end();
        let private = self.private_pages(end);
        if let (Layout::Image(base), Some(private)) = (&self.layout, &private)
            && private.is_empty()
            && base.len() == self.size
        {
            // Nothing written or grown since the base image was mapped: it is the capture.
            return Ok(Arc::clone(base));
        }
        let candidates = match (&self.layout, private) {
            (Layout::Anonymous, Some(private)) => private,
            (Layout::Image(base), Some(mut private)) => {
                // Pages of the base image never touched here are not in the page tables.
                private.extend(base.data_runs.iter().map(|run| run.start.min(end)..run.end.min(end)));
                union(private)
            }
            // Without PAGEMAP_SCAN, or after a failed remap: look at every page.
            #[allow(clippy::single_range_in_vec_init)]
            _ => vec![0..end],
        };
        let image = Arc::new(MemoryImage::capture_from(self.contents(), &candidates)?);
        // The image holds what the memory holds, so mapping it, even halfway, changes no byte: if
        // it fails, the capture still stands, only the next capture or restore costs more.
        self.layout = match self.map_image(&image) {
            Ok(()) => Layout::Image(Arc::clone(&image)),
            Err(_) => Layout::Unknown,
        };
        Ok(image)
    }

    /// Puts `image` back: afterwards the size is `image.len()` and every byte equals the image.
    /// Restoring the base image drops only the pages written since it was mapped; another image is
    /// mapped over the memory. An image larger than the capacity or maximum is refused without
    /// any change; after any other error the contents are unspecified (but the size is unchanged,
    /// and everything below it stays accessible), and the memory should be discarded.
    pub fn restore(&mut self, image: &Arc<MemoryImage>) -> io::Result<()> {
        self.ensure_usable()?;
        if image.len() > self.capacity {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "an image of {} bytes does not fit a memory reservation of {} bytes",
                    image.len(),
                    self.capacity
                ),
            ));
        }
        if let Some(maximum) = self.maximum
            && image.len() > maximum
        {
            return Err(invalid_input(format!(
                "an image of {} bytes exceeds the memory's maximum of {maximum} bytes",
                image.len()
            )));
        }
        let old_size = self.size;
        let old_end = self.accessible_end();
        let image_end = image.mapped_len;
        let is_base =
            matches!(&self.layout, Layout::Image(base) if Arc::ptr_eq(base, image)) && old_size >= image.len();
        let written = if is_base { self.private_pages(image_end) } else { None };
        if let Some(written) = written {
            // Each 2 MiB region (of the address space) holding a written page is dropped whole,
            // not page by page: the kernel frees a page table a zap leaves empty, and the next
            // `PAGEMAP_SCAN` skips regions without one, so a reset costs what the guest touched
            // since the last one rather than everything it ever touched. Pages only read there
            // fault in again from the image.
            for region in page_table_regions(self.base.as_ptr().addr(), &written, image_end) {
                // A failure here leaves the layout intact, only some pages restored.
                self.discard(region)?;
            }
        } else if let Err(error) = self.map_image(image) {
            return Err(self.recover(old_size, error));
        }
        if old_end > image_end
            && let Err(error) = self.map_anonymous(image_end..old_end, libc::PROT_NONE)
        {
            return Err(self.recover(old_size, error));
        }
        self.layout = Layout::Image(Arc::clone(image));
        self.size = image.len();
        Ok(())
    }

    /// After a remap failed: keeps `size`, makes sure everything past it is fresh PROT_NONE memory
    /// again (a larger image may have been mapped there), and forgets the layout.
    fn recover(&mut self, size: usize, error: io::Error) -> io::Error {
        self.size = size;
        let end = self.accessible_end();
        self.layout = match self.map_anonymous(end..self.capacity, libc::PROT_NONE) {
            Ok(()) => Layout::Unknown,
            Err(_) => Layout::Broken,
        };
        io::Error::new(error.kind(), format!("restoring a memory: {error}"))
    }

    fn ensure_usable(&self) -> io::Result<()> {
        match self.layout {
            Layout::Broken => Err(io::Error::other(
                "this memory is unusable: a failed remap could not be undone",
            )),
            _ => Ok(()),
        }
    }

    /// The end of the accessible pages.
    fn accessible_end(&self) -> usize {
        self.size.next_multiple_of(page_size()) // at most `capacity`, which is aligned
    }

    /// The accessible bytes.
    fn contents(&self) -> &[u8] {
        // SAFETY: `[0, size)` is mapped readable; the guest is not running while the memory is
        // borrowed here (module documentation), so nothing writes it during the borrow.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.size) }
    }

    /// Maps `image` over `[0, image.mapped_len)` (which must be within the capacity).
    fn map_image(&self, image: &MemoryImage) -> io::Result<()> {
        self.map_image_range(image, 0..image.mapped_len)
    }

    /// Maps `range` (page-aligned, within `[0, image.mapped_len)`) of `image` over the same
    /// range of this memory: its data from the memfd, its holes anonymous.
    fn map_image_range(&self, image: &MemoryImage, range: Range<usize>) -> io::Result<()> {
        let read_write = libc::PROT_READ | libc::PROT_WRITE;
        let mut offset = range.start;
        for segment in &image.file_segments {
            let (start, end) = (segment.start.max(range.start), segment.end.min(range.end));
            if start >= end {
                continue;
            }
            self.map_anonymous(offset..start, read_write)?;
            self.map_file(start..end, &image.file)?;
            offset = end;
        }
        self.map_anonymous(offset..range.end, read_write)
    }

    /// Errors unless `range` is page-aligned and within the reservation: what makes the unsafe
    /// remapping below touch nothing but this memory.
    fn check_range(&self, range: &Range<usize>) -> io::Result<()> {
        let page = page_size();
        if range.start > range.end
            || range.end > self.capacity
            || !range.start.is_multiple_of(page)
            || !range.end.is_multiple_of(page)
        {
            return Err(io::Error::other(format!(
                "internal error: {range:?} is not a page range of a memory of {} bytes",
                self.capacity
            )));
        }
        Ok(())
    }

    /// Replaces `range` with fresh anonymous memory (zeros) accessible as `protection`.
    fn map_anonymous(&self, range: Range<usize>, protection: c_int) -> io::Result<()> {
        self.check_range(&range)?;
        if range.is_empty() {
            return Ok(());
        }
        // SAFETY: `range` lies within this memory's own mapping (checked above), which nothing
        // else uses; MAP_FIXED replaces exactly those pages.
        let mapped = unsafe {
            libc::mmap(
                self.base.as_ptr().add(range.start).cast(),
                range.len(),
                protection,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            return Err(os_error(&format!("mapping anonymous memory over {range:?}")));
        }
        Ok(())
    }

    /// Maps `range` of `file` copy-on-write over the same range of this memory, read/write.
    fn map_file(&self, range: Range<usize>, file: &File) -> io::Result<()> {
        self.check_range(&range)?;
        if range.is_empty() {
            return Ok(());
        }
        let offset = libc::off_t::try_from(range.start).map_err(|_| invalid_input(format!("{range:?}")))?;
        // SAFETY: `range` lies within this memory's own mapping (checked above), which nothing
        // else uses; MAP_FIXED replaces exactly those pages. MAP_PRIVATE: writes never reach the
        // file (which is sealed anyway).
        let mapped = unsafe {
            libc::mmap(
                self.base.as_ptr().add(range.start).cast(),
                range.len(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_NORESERVE,
                file.as_raw_fd(),
                offset,
            )
        };
        if mapped == libc::MAP_FAILED {
            return Err(os_error(&format!("mapping a memory image over {range:?}")));
        }
        Ok(())
    }

    /// Changes the protection of `range`.
    fn protect(&self, range: Range<usize>, protection: c_int) -> io::Result<()> {
        self.check_range(&range)?;
        if range.is_empty() {
            return Ok(());
        }
        // SAFETY: `range` lies within this memory's own mapping (checked above).
        if unsafe { libc::mprotect(self.base.as_ptr().add(range.start).cast(), range.len(), protection) } < 0 {
            return Err(os_error(&format!("making {range:?} of a memory accessible")));
        }
        Ok(())
    }

    /// Drops the private pages of `range` (`MADV_DONTNEED`): a file-backed page reads the file
    /// again, an anonymous one reads zeros. A page table left empty is freed (Linux 6.14 and
    /// later), so the next `PAGEMAP_SCAN` skips its 2 MiB.
    fn discard(&self, range: Range<usize>) -> io::Result<()> {
        self.check_range(&range)?;
        if range.is_empty() {
            return Ok(());
        }
        // SAFETY: `range` lies within this memory's own mapping (checked above); only its
        // contents change, to what the mapping says they are.
        if unsafe {
            libc::madvise(
                self.base.as_ptr().add(range.start).cast(),
                range.len(),
                libc::MADV_DONTNEED,
            )
        } < 0
        {
            return Err(os_error(&format!("discarding {range:?} of a memory")));
        }
        Ok(())
    }

    /// The pages in `[0, end)` holding a private copy (written since mapped: present or swapped,
    /// not file-backed, not the shared zero page), as sorted, disjoint ranges; `None` if the
    /// kernel cannot tell.
    fn private_pages(&self, end: usize) -> Option<Vec<Range<usize>>> {
        if end == 0 {
            return Some(Vec::new());
        }
        pagemap::private_pages(self.base.as_ptr().addr(), end)
    }
}

impl Drop for SnapshotMemory {
    fn drop(&mut self) {
        // First, while the address cannot be reused by another memory.
        unregister(self.base.as_ptr());
        // SAFETY: the mapping made in `new` with this length, unmapped only here; its owner is
        // gone, and wasmtime drops its memory only after the instances using it.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.mapping_len);
        }
    }
}

/// `PAGEMAP_SCAN` (linux/fs.h, Linux 6.7): which pages of a range are in which state.
mod pagemap {
    use std::fs::File;
    use std::io;
    use std::ops::Range;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::push_joined;

    pub const PAGE_IS_FILE: u64 = 1 << 2;
    pub const PAGE_IS_PRESENT: u64 = 1 << 3;
    pub const PAGE_IS_SWAPPED: u64 = 1 << 4;
    pub const PAGE_IS_PFNZERO: u64 = 1 << 5;

    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default)]
    pub struct PageRegion {
        pub start: u64,
        pub end: u64,
        pub categories: u64,
    }

    #[repr(C)]
    #[derive(Debug, Default)]
    pub struct PmScanArg {
        pub size: u64,
        pub flags: u64,
        pub start: u64,
        pub end: u64,
        pub walk_end: u64,
        pub vec: u64,
        pub vec_len: u64,
        pub max_pages: u64,
        pub category_inverted: u64,
        pub category_mask: u64,
        pub category_anyof_mask: u64,
        pub return_mask: u64,
    }

    const _: () = assert!(size_of::<PmScanArg>() == 96 && size_of::<PageRegion>() == 24);

    pub const PAGEMAP_SCAN: libc::Ioctl = libc::_IOWR::<PmScanArg>(b'f' as u32, 16);

    /// Set once the kernel refused the ioctl for good (before 6.7: ENOTTY).
    pub static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

    /// `/proc/self/pagemap`, opened once, with the process it belongs to: after a fork() the
    /// descriptor still describes the parent.
    static PAGEMAP: OnceLock<Option<(u32, OwnedFd)>> = OnceLock::new();

    fn open() -> Option<OwnedFd> {
        File::open("/proc/self/pagemap").ok().map(OwnedFd::from)
    }

    /// See `SnapshotMemory::private_pages`: offsets from `base`.
    pub fn private_pages(base: usize, end: usize) -> Option<Vec<Range<usize>>> {
        if UNAVAILABLE.load(Ordering::Relaxed) {
            return None;
        }
        match PAGEMAP.get_or_init(|| open().map(|fd| (std::process::id(), fd))) {
            Some((pid, fd)) if *pid == std::process::id() => scan(fd.as_fd(), base, end),
            Some(_) => scan(open()?.as_fd(), base, end),
            None => None,
        }
    }

    fn scan(pagemap: BorrowedFd<'_>, base: usize, end: usize) -> Option<Vec<Range<usize>>> {
        let scan_end = u64::try_from(base.checked_add(end)?).ok()?;
        let mut regions = vec![PageRegion::default(); 512];
        let mut found: Vec<Range<usize>> = Vec::new();
        let mut from = base as u64;
        while from < scan_end {
            let mut arg = PmScanArg {
                size: size_of::<PmScanArg>() as u64,
                start: from,
                end: scan_end,
                vec: regions.as_mut_ptr().expose_provenance() as u64,
                vec_len: regions.len() as u64,
                // Not file-backed and not the zero page...
                category_inverted: PAGE_IS_FILE | PAGE_IS_PFNZERO,
                category_mask: PAGE_IS_FILE | PAGE_IS_PFNZERO,
                // ...and in memory or swapped out.
                category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
                ..PmScanArg::default()
            };
            // SAFETY: `arg` is a valid pm_scan_arg whose `vec` points to `regions.len()` writable
            // page_regions, alive for the call; the scan only reads this process's page tables.
            let count = unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg as *mut PmScanArg) };
            if count < 0 {
                let errno = io::Error::last_os_error().raw_os_error();
                if matches!(
                    errno,
                    Some(libc::ENOTTY | libc::EINVAL | libc::EPERM | libc::EACCES | libc::EOPNOTSUPP)
                ) {
                    UNAVAILABLE.store(true, Ordering::Relaxed);
                }
                return None;
            }
            let count = usize::try_from(count).ok()?.min(regions.len());
            for region in &regions[..count] {
                let start = usize::try_from(region.start).ok()?.checked_sub(base)?;
                let end = usize::try_from(region.end).ok()?.checked_sub(base)?;
                push_joined(&mut found, start..end);
            }
            if arg.walk_end <= from {
                return None; // no progress: do not trust it
            }
            from = arg.walk_end;
        }
        Some(found)
    }
}

/// The memories made shareable with [`register`], by base address.
static REGISTRY: Mutex<BTreeMap<usize, Weak<Mutex<SnapshotMemory>>>> = Mutex::new(BTreeMap::new());

/// Shares `memory` and makes it findable by its base address ([`find`]) until it is dropped.
pub fn register(memory: SnapshotMemory) -> Arc<Mutex<SnapshotMemory>> {
    let base = memory.base().addr();
    let shared = Arc::new(Mutex::new(memory));
    REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(base, Arc::downgrade(&shared));
    shared
}

/// The registered memory whose base is `base` (what `wasmtime::Memory::data_ptr` returns).
/// Locks a registered memory. A panic while it was locked left it poisoned, not broken: every
/// change that can fail halfway marks the memory itself (`Layout::Unknown`, `Layout::Broken`).
pub fn lock(memory: &Mutex<SnapshotMemory>) -> std::sync::MutexGuard<'_, SnapshotMemory> {
    memory.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn find(base: *mut u8) -> Option<Arc<Mutex<SnapshotMemory>>> {
    REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&base.addr())?
        .upgrade()
}

fn unregister(base: *mut u8) {
    REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&base.addr());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    const WASM_PAGE: usize = 64 * KIB;

    /// Tests run one at a time: some switch the PAGEMAP_SCAN fallback on, some measure RSS.
    fn serial() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `test` with PAGEMAP_SCAN, then again as if the kernel lacked it.
    fn with_and_without_scan(test: impl Fn()) {
        test();
        pagemap::UNAVAILABLE.store(true, Ordering::Relaxed);
        test();
        pagemap::UNAVAILABLE.store(false, Ordering::Relaxed);
    }

    fn scan_works() -> bool {
        let memory = SnapshotMemory::new(WASM_PAGE, None, None, 0).unwrap();
        memory.private_pages(WASM_PAGE).is_some()
    }

    fn bytes(memory: &mut SnapshotMemory) -> &mut [u8] {
        // SAFETY: `[0, size)` is accessible and the test owns the memory.
        unsafe { std::slice::from_raw_parts_mut(memory.base(), memory.byte_size()) }
    }

    fn image_bytes(image: &MemoryImage) -> Vec<u8> {
        let mut out = vec![0; image.len()];
        image.read_at(0, &mut out).unwrap();
        out
    }

    /// A deterministic pattern with no zero bytes.
    fn fill(buf: &mut [u8], seed: u8) {
        for (index, byte) in buf.iter_mut().enumerate() {
            *byte = ((index / 4096) as u8).wrapping_mul(31).wrapping_add(seed) | 1;
        }
    }

    fn status_kib(field: &str) -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|line| line.starts_with(field)).unwrap();
        line[field.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap()
    }

    fn shmem_kib() -> usize {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let line = meminfo.lines().find(|line| line.starts_with("Shmem:")).unwrap();
        line["Shmem:".len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap()
    }

    fn micros(duration: Duration) -> f64 {
        duration.as_secs_f64() * 1e6
    }

    #[test]
    fn ioctl_number_matches_the_kernel_header() {
        assert_eq!(pagemap::PAGEMAP_SCAN as u32, 0xc060_6610); // libc::Ioctl: c_ulong on glibc, c_int on musl
    }

    #[test]
    fn new_memory_is_zero_and_grows_in_place() {
        let _serial = serial();
        let mut memory = SnapshotMemory::new(2 * WASM_PAGE, Some(8 * WASM_PAGE), None, 64 * KIB).unwrap();
        let base = memory.base();
        assert_eq!(memory.byte_size(), 2 * WASM_PAGE);
        assert_eq!(memory.byte_capacity(), 8 * WASM_PAGE);
        assert!(is_zero(bytes(&mut memory)));
        bytes(&mut memory).fill(9);
        memory.grow_to(5 * WASM_PAGE).unwrap();
        assert_eq!(memory.base(), base);
        assert!(is_zero(&bytes(&mut memory)[2 * WASM_PAGE..]));
        assert!(memory.grow_to(9 * WASM_PAGE).is_err(), "past the maximum");
        assert!(memory.grow_to(WASM_PAGE).is_err(), "shrinking");
        assert_eq!(memory.byte_size(), 5 * WASM_PAGE);

        // Without a maximum or reservation, the capacity is the minimum.
        let mut fixed = SnapshotMemory::new(WASM_PAGE, None, None, 0).unwrap();
        assert_eq!(fixed.byte_capacity(), WASM_PAGE);
        assert!(fixed.grow_to(2 * WASM_PAGE).is_err());
        // An empty memory still has a base.
        let empty = SnapshotMemory::new(0, Some(0), None, 0).unwrap();
        assert!(!empty.base().is_null());
        assert!(SnapshotMemory::new(2 * WASM_PAGE, Some(WASM_PAGE), None, 0).is_err());
    }

    #[test]
    fn restore_after_capture_gives_the_image_back() {
        let _serial = serial();
        with_and_without_scan(|| {
            let mut memory = SnapshotMemory::new(16 * WASM_PAGE, None, Some(64 * WASM_PAGE), WASM_PAGE).unwrap();
            fill(&mut bytes(&mut memory)[..4 * WASM_PAGE], 3);
            let image = memory.capture().unwrap();
            assert_eq!(image.len(), 16 * WASM_PAGE);
            assert_eq!(image.stored_bytes(), 4 * WASM_PAGE, "zero pages are holes");
            let expected = image_bytes(&image);
            assert_eq!(&expected[..], &bytes(&mut memory)[..], "capture changes no byte");

            bytes(&mut memory)[5] = 0;
            bytes(&mut memory)[10 * WASM_PAGE + 7] = 42; // in a hole of the image
            memory.restore(&image).unwrap();
            assert_eq!(&expected[..], &bytes(&mut memory)[..]);
            assert_eq!(image_bytes(&image), expected, "the image is unchanged");

            // Again, from the same base.
            bytes(&mut memory)[WASM_PAGE] = 0;
            memory.restore(&image).unwrap();
            assert_eq!(&expected[..], &bytes(&mut memory)[..]);
        });
    }

    #[test]
    fn only_written_pages_count_as_dirty() {
        let _serial = serial();
        if !scan_works() {
            eprintln!("PAGEMAP_SCAN unavailable: skipped");
            return;
        }
        let page = page_size();
        let mut memory = SnapshotMemory::new(64 * WASM_PAGE, None, None, 0).unwrap();
        fill(&mut bytes(&mut memory)[..32 * WASM_PAGE], 5); // half data, half holes
        let image = memory.capture().unwrap();
        assert_eq!(
            memory.private_pages(64 * WASM_PAGE),
            Some(vec![]),
            "a fresh base has no private pages"
        );
        let sum = bytes(&mut memory).iter().fold(0u64, |sum, &byte| sum + u64::from(byte));
        assert!(sum > 0);
        assert_eq!(
            memory.private_pages(64 * WASM_PAGE),
            Some(vec![]),
            "reading dirties nothing"
        );
        bytes(&mut memory)[3 * page + 1] = 1; // data page
        bytes(&mut memory)[40 * WASM_PAGE] = 1; // hole
        assert_eq!(
            memory.private_pages(64 * WASM_PAGE),
            Some(vec![3 * page..4 * page, 40 * WASM_PAGE..40 * WASM_PAGE + page])
        );
        memory.restore(&image).unwrap();
        assert_eq!(memory.private_pages(64 * WASM_PAGE), Some(vec![]));
        assert_eq!(&image_bytes(&image)[..], &bytes(&mut memory)[..]);
    }

    #[test]
    fn capturing_an_unchanged_memory_returns_its_base_image() {
        let _serial = serial();
        if !scan_works() {
            eprintln!("PAGEMAP_SCAN unavailable: skipped");
            return;
        }
        let mut memory = SnapshotMemory::new(4 * WASM_PAGE, Some(8 * WASM_PAGE), None, 0).unwrap();
        fill(&mut bytes(&mut memory)[..WASM_PAGE], 1);
        let first = memory.capture().unwrap();
        assert!(is_zero(&bytes(&mut memory)[WASM_PAGE..]) && bytes(&mut memory)[0] != 0);
        let second = memory.capture().unwrap();
        assert!(Arc::ptr_eq(&first, &second), "only read since");
        assert!(Arc::ptr_eq(memory.base_image().unwrap(), &first));
        memory.grow_to(5 * WASM_PAGE).unwrap();
        let grown = memory.capture().unwrap();
        assert!(!Arc::ptr_eq(&first, &grown));
        bytes(&mut memory)[7] ^= 1;
        let written = memory.capture().unwrap();
        assert!(!Arc::ptr_eq(&grown, &written));
        assert_eq!(image_bytes(&written)[7], image_bytes(&grown)[7] ^ 1);
    }

    #[test]
    fn growth_after_capture_is_dropped_by_restore() {
        let _serial = serial();
        with_and_without_scan(|| {
            let mut memory = SnapshotMemory::new(2 * WASM_PAGE, Some(16 * WASM_PAGE), None, WASM_PAGE).unwrap();
            fill(bytes(&mut memory), 7);
            let image = memory.capture().unwrap();
            memory.grow_to(6 * WASM_PAGE).unwrap();
            fill(&mut bytes(&mut memory)[2 * WASM_PAGE..], 8);
            bytes(&mut memory)[0] = 0;
            memory.restore(&image).unwrap();
            assert_eq!(memory.byte_size(), 2 * WASM_PAGE);
            assert_eq!(&image_bytes(&image)[..], &bytes(&mut memory)[..]);
            memory.grow_to(6 * WASM_PAGE).unwrap();
            assert!(is_zero(&bytes(&mut memory)[2 * WASM_PAGE..]), "regrown pages are zeros");
            assert_eq!(&image_bytes(&image)[..], &bytes(&mut memory)[..2 * WASM_PAGE]);
        });
    }

    #[test]
    fn restores_other_images_of_any_size() {
        let _serial = serial();
        with_and_without_scan(|| {
            let mut memory = SnapshotMemory::new(4 * WASM_PAGE, Some(32 * WASM_PAGE), None, WASM_PAGE).unwrap();
            fill(bytes(&mut memory), 1);
            let small = memory.capture().unwrap();
            memory.grow_to(12 * WASM_PAGE).unwrap();
            fill(&mut bytes(&mut memory)[6 * WASM_PAGE..], 2);
            let large = memory.capture().unwrap();
            assert_eq!(large.stored_bytes(), 10 * WASM_PAGE);

            bytes(&mut memory)[11 * WASM_PAGE] = 0;
            memory.restore(&small).unwrap();
            assert_eq!(&image_bytes(&small)[..], &bytes(&mut memory)[..]);
            memory.restore(&large).unwrap();
            assert_eq!(memory.byte_size(), 12 * WASM_PAGE);
            assert_eq!(&image_bytes(&large)[..], &bytes(&mut memory)[..]);
            memory.restore(&small).unwrap();
            memory.grow_to(12 * WASM_PAGE).unwrap();
            assert!(is_zero(&bytes(&mut memory)[4 * WASM_PAGE..]));

            // Larger than the maximum: refused, nothing changes.
            let mut other = SnapshotMemory::new(WASM_PAGE, Some(2 * WASM_PAGE), None, 0).unwrap();
            bytes(&mut other)[0] = 5;
            assert!(other.restore(&large).is_err());
            assert_eq!((other.byte_size(), bytes(&mut other)[0]), (WASM_PAGE, 5));
            // Larger than the reservation: refused too.
            let mut tight = SnapshotMemory::new(WASM_PAGE, None, Some(2 * WASM_PAGE), 0).unwrap();
            assert!(tight.restore(&large).is_err());
            assert_eq!(tight.byte_size(), WASM_PAGE);

            let empty = Arc::new(MemoryImage::from_bytes(&[]).unwrap());
            memory.restore(&empty).unwrap();
            assert_eq!(memory.byte_size(), 0);
            memory.grow_to(3 * WASM_PAGE).unwrap();
            assert!(is_zero(bytes(&mut memory)));
        });
    }

    #[test]
    fn capture_of_a_fork_keeps_pages_it_never_touched() {
        let _serial = serial();
        with_and_without_scan(|| {
            let mut contents = vec![0u8; 8 * MIB];
            fill(&mut contents[..MIB], 4);
            fill(&mut contents[5 * MIB..6 * MIB], 6); // far apart: two file segments
            let image = Arc::new(MemoryImage::from_bytes(&contents).unwrap());
            assert_eq!(image.file_segments.len(), 2);
            let mut fork = SnapshotMemory::from_image(&image, None, None, 0).unwrap();
            bytes(&mut fork)[7 * MIB] = 1;
            let again = fork.capture().unwrap();
            contents[7 * MIB] = 1;
            assert_eq!(image_bytes(&again), contents);
            assert_eq!(again.stored_bytes(), 2 * MIB + page_size());
        });
    }

    #[test]
    fn forks_are_isolated() {
        let _serial = serial();
        with_and_without_scan(|| {
            let mut contents = vec![0u8; 4 * WASM_PAGE];
            fill(&mut contents, 9);
            let image = Arc::new(MemoryImage::from_bytes(&contents).unwrap());
            let mut first = SnapshotMemory::from_image(&image, None, Some(8 * WASM_PAGE), 0).unwrap();
            let mut second = SnapshotMemory::from_image(&image, None, Some(8 * WASM_PAGE), 0).unwrap();
            bytes(&mut first)[100] = 0;
            second.grow_to(5 * WASM_PAGE).unwrap();
            bytes(&mut second)[200] = 0;
            bytes(&mut second)[4 * WASM_PAGE] = 3;
            assert_eq!(bytes(&mut first)[200], contents[200]);
            assert_eq!(bytes(&mut second)[100], contents[100]);
            assert_eq!(first.byte_size(), 4 * WASM_PAGE);
            assert_eq!(image_bytes(&image), contents);
            first.restore(&image).unwrap();
            assert_eq!(&contents[..], &bytes(&mut first)[..]);
            assert_eq!(bytes(&mut second)[200], 0, "restoring one fork leaves the other alone");
        });
    }

    #[test]
    fn reading_holes_allocates_nothing_in_the_image() {
        let _serial = serial();
        let mut contents = vec![0u8; 64 * MIB];
        fill(&mut contents[..WASM_PAGE], 2);
        fill(&mut contents[63 * MIB..], 2);
        let image = Arc::new(MemoryImage::from_bytes(&contents).unwrap());
        let mut fork = SnapshotMemory::from_image(&image, None, None, 0).unwrap();
        let before = data_bytes(&image.file).unwrap();
        let nonzero = bytes(&mut fork)
            .iter()
            .step_by(page_size())
            .filter(|&&byte| byte != 0)
            .count();
        assert_eq!(nonzero, (WASM_PAGE + MIB) / page_size(), "every page was read");
        assert_eq!(data_bytes(&image.file).unwrap(), before);
    }

    #[test]
    fn sizes_need_not_be_page_multiples() {
        let _serial = serial();
        with_and_without_scan(|| {
            let mut memory = SnapshotMemory::new(100, Some(3 * WASM_PAGE), None, 0).unwrap();
            bytes(&mut memory).fill(1);
            let image = memory.capture().unwrap();
            assert_eq!(image.len(), 100);
            memory.grow_to(5000).unwrap();
            assert!(is_zero(&bytes(&mut memory)[100..]));
            bytes(&mut memory)[4000] = 3;
            bytes(&mut memory)[50] = 3;
            memory.restore(&image).unwrap();
            assert_eq!(memory.byte_size(), 100);
            assert_eq!(bytes(&mut memory), &[1u8; 100][..]);
            memory.grow_to(5000).unwrap();
            assert!(is_zero(&bytes(&mut memory)[100..]));
        });
    }

    #[test]
    fn registry_finds_live_memories_only() {
        let _serial = serial();
        let shared = register(SnapshotMemory::new(WASM_PAGE, None, None, 0).unwrap());
        let base = shared.lock().unwrap().base();
        assert!(Arc::ptr_eq(&find(base).unwrap(), &shared));
        drop(shared);
        assert!(find(base).is_none());
        assert!(!REGISTRY.lock().unwrap().contains_key(&base.addr()));
    }

    #[test]
    fn costs_follow_what_changed() {
        let _serial = serial();
        let size = 64 * MIB;
        let mut memory = SnapshotMemory::new(size, None, Some(2 * size), WASM_PAGE).unwrap();
        fill(bytes(&mut memory), 11);
        let started = Instant::now();
        let image = memory.capture().unwrap();
        let capture = started.elapsed();

        let mut restores = Vec::new();
        for round in 0..20 {
            bytes(&mut memory)[(round * 7919 * 4096) % size] ^= 0xff;
            let started = Instant::now();
            memory.restore(&image).unwrap();
            restores.push(started.elapsed());
        }
        restores.sort();
        let restore = restores[restores.len() / 2];
        assert_eq!(&image_bytes(&image)[..], &bytes(&mut memory)[..]);

        let page = page_size();
        bytes(&mut memory)[0] ^= 0xff;
        pagemap::UNAVAILABLE.store(true, Ordering::Relaxed);
        let started = Instant::now();
        memory.restore(&image).unwrap();
        let remap = started.elapsed();
        pagemap::UNAVAILABLE.store(false, Ordering::Relaxed);

        let started = Instant::now();
        let unchanged = memory.capture().unwrap();
        let capture_unchanged = started.elapsed();
        assert!(!scan_works() || Arc::ptr_eq(&unchanged, &image));
        bytes(&mut memory)[4096] ^= 0xff;
        let started = Instant::now();
        let recaptured = memory.capture().unwrap();
        let capture_one_dirty = started.elapsed();
        let started = Instant::now();
        memory.restore(&image).unwrap();
        let restore_other = started.elapsed();
        assert_eq!(image_bytes(&image)[4096], bytes(&mut memory)[4096]);
        assert_ne!(image_bytes(&recaptured)[4096], bytes(&mut memory)[4096]);

        let mut forks = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            let fork = SnapshotMemory::from_image(&image, None, Some(2 * size), WASM_PAGE).unwrap();
            forks.push((started.elapsed(), fork));
        }
        forks.sort_by_key(|(took, _)| *took);
        let fork = forks[forks.len() / 2].0;
        eprintln!(
            "64 MiB, all pages data: capture {:.0} us; restore after 1 dirty page {:.1} us (median of 20); \
             same by remapping (no PAGEMAP_SCAN) {:.1} us; capture unchanged {:.1} us; capture after 1 dirty \
             page {:.0} us; restore of another image {:.1} us; fork {:.1} us (median of 20); page {page} B",
            micros(capture),
            micros(restore),
            micros(remap),
            micros(capture_unchanged),
            micros(capture_one_dirty),
            micros(restore_other),
            micros(fork),
        );
        if scan_works() {
            assert!(
                restore < Duration::from_millis(5),
                "restoring one page took {restore:?}"
            );
        }
    }

    #[test]
    fn thousand_forks_share_their_pages() {
        let _serial = serial();
        let size = 64 * MIB;
        let mut contents = vec![0u8; size];
        fill(&mut contents, 13);
        let image = Arc::new(MemoryImage::from_bytes(&contents).unwrap());
        drop(contents);
        let page = page_size();
        let (anon, shmem, page_tables) = (status_kib("RssAnon:"), shmem_kib(), status_kib("VmPTE:"));
        let started = Instant::now();
        let mut forks = Vec::with_capacity(1000);
        for index in 0..1000 {
            let mut fork = SnapshotMemory::from_image(&image, None, Some(size), WASM_PAGE).unwrap();
            bytes(&mut fork)[(index * 4099 * page) % size] ^= 0xff;
            forks.push(fork);
        }
        let took = started.elapsed();
        let anon = status_kib("RssAnon:").saturating_sub(anon);
        let shmem = shmem_kib().saturating_sub(shmem);
        let page_tables = status_kib("VmPTE:").saturating_sub(page_tables);
        eprintln!(
            "1000 forks of a 64 MiB image, one page written in each: {:.1} ms ({:.1} us each); \
             RssAnon +{anon} KiB, Shmem (system-wide) +{shmem} KiB, page tables +{page_tables} KiB; \
             image stored {} KiB",
            took.as_secs_f64() * 1e3,
            micros(took) / 1000.0,
            image.stored_bytes() / KIB,
        );
        // A private copy each would be 64 GiB; one page and a page table each is about 8 MiB.
        assert!(anon + page_tables < 64 * 1024, "forks cost {anon} + {page_tables} KiB");
        let image_byte = |offset: usize| {
            let mut byte = [0u8];
            image.read_at(offset, &mut byte).unwrap();
            byte[0]
        };
        for (index, fork) in forks.iter_mut().enumerate().take(3) {
            let offset = (index * 4099 * page) % size;
            assert_eq!(bytes(fork)[offset], image_byte(offset) ^ 0xff);
            assert_eq!(bytes(fork)[offset + page], image_byte(offset + page));
        }
    }
}

// ---- wasmtime glue (everything below needs the wasmtime crate) ----

pub use wasmtime_glue::SnapshotMemoryCreator;

/// The engine's side: wasmtime creates every linear memory through [`SnapshotMemoryCreator`] and
/// holds it as a thin handle on the shared, registered [`SnapshotMemory`], which the embedder
/// reaches with [`find`]. A new memory is plain zeros; wasmtime then writes the module's data
/// segments into it, so a fork restores its image after instantiating.
mod wasmtime_glue {
    use std::sync::{Arc, Mutex};

    use super::{SnapshotMemory, register};

    /// Creates linear memories as [`SnapshotMemory`]s (not shared ones: those are refused).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct SnapshotMemoryCreator;

    // SAFETY: every memory returned is a `SnapshotMemory` reserving `reserved_size_in_bytes` (at
    // least the minimum) plus `guard_size_in_bytes` of inaccessible guard, zero-filled, whose base
    // never moves; see `SnapshotLinearMemory`.
    unsafe impl wasmtime::MemoryCreator for SnapshotMemoryCreator {
        fn new_memory(
            &self,
            ty: wasmtime::MemoryType,
            minimum: usize,
            maximum: Option<usize>,
            reserved_size_in_bytes: Option<usize>,
            guard_size_in_bytes: usize,
        ) -> Result<Box<dyn wasmtime::LinearMemory>, String> {
            if ty.is_shared() {
                return Err("shared memories cannot be snapshot memories".to_owned());
            }
            let memory = SnapshotMemory::new(minimum, maximum, reserved_size_in_bytes, guard_size_in_bytes)
                .map_err(|error| format!("creating a linear memory: {error}"))?;
            Ok(Box::new(SnapshotLinearMemory::new(register(memory))))
        }
    }

    /// What wasmtime holds: the shared memory, with its base and capacity (which never change)
    /// kept outside the lock.
    struct SnapshotLinearMemory {
        memory: Arc<Mutex<SnapshotMemory>>,
        base: usize,
        capacity: usize,
    }

    impl SnapshotLinearMemory {
        fn new(memory: Arc<Mutex<SnapshotMemory>>) -> Self {
            let (base, capacity) = {
                let owned = super::lock(&memory);
                (owned.base().expose_provenance(), owned.byte_capacity())
            };
            SnapshotLinearMemory { memory, base, capacity }
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, SnapshotMemory> {
            super::lock(&self.memory)
        }
    }

    // SAFETY: `as_ptr` is the base of a reservation of `byte_capacity()` bytes plus the guard
    // wasmtime asked for, all PROT_NONE past `byte_size()`; the base never moves; growth makes
    // zero-filled pages accessible. The embedder changes the size only through `restore`, and then
    // lets wasmtime read it again (a `grow` of 0 pages).
    unsafe impl wasmtime::LinearMemory for SnapshotLinearMemory {
        fn byte_size(&self) -> usize {
            self.lock().byte_size()
        }

        fn byte_capacity(&self) -> usize {
            self.capacity
        }

        fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
            self.lock().grow_to(new_size).map_err(wasmtime::Error::new)
        }

        fn as_ptr(&self) -> *mut u8 {
            std::ptr::with_exposed_provenance_mut(self.base)
        }
    }
}

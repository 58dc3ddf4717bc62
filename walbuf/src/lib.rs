//! A SQLite VFS that writes each transaction's WAL frames to the file in one system call.
//!
//! SQLite appends a WAL frame as two `pwrite`s, its 24-byte header and then its page, so a
//! group commit of 20 pages makes 40 system calls before its `fsync`. On the gateway's machine
//! that cost 94 µs a commit against 12–19 µs for the same bytes in one call (BENCHMARKS.md,
//! twelfth session), and the store writer, whose every microsecond every request waits for,
//! paid it.
//!
//! This VFS wraps the default one ("unix" on Linux) and changes one thing: writes to a WAL
//! file that continue the previous one are gathered in memory and written together when
//! SQLite syncs the file (or reads from it, truncates it, asks its size, closes it, writes
//! elsewhere in it, or the run reaches [`CAP`]). Every other file, and every other call, goes
//! straight to the wrapped VFS, locks and shared memory included.
//!
//! **Only for a connection with `PRAGMA synchronous=FULL` on a file with power-safe overwrite**
//! (the unix VFS's default; a `psow=0` URI parameter turns it off). Then SQLite syncs the WAL
//! at the end of every commit, after its last frame and before it publishes the new frames in
//! the WAL index (`walFrames`), so no other connection can be pointed at a frame still in this
//! buffer; and what was never synced was never acknowledged, so a crash loses nothing it would
//! not have lost anyway. With a weaker setting the commit would publish frames this VFS still
//! holds; without power-safe overwrite SQLite pads the commit to a sector and writes the tail
//! of the padding after the sync, which would stay here too.
//!
//! Register it once with [`register`], then open the connection with the VFS [`NAME`].

// The crate is the FFI boundary: each function below is a callback SQLite calls with pointers
// it owns. The soundness argument is the same for all of them and is given once, here:
// SQLite allocates `szOsFile` bytes (8-byte aligned) for every file and hands that pointer to
// `x_open` and then to every method of the file, from one connection at a time, until
// `x_close`; `x_open` writes a `File` at its start and the wrapped VFS's file right after it.
#![allow(unsafe_code)]

use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

/// The VFS's name, for `Connection::open_with_flags_and_vfs`.
pub const NAME: &str = "hotline-walbuf";
const NAME_C: &CStr = c"hotline-walbuf";

/// The longest run of WAL bytes held in memory; a longer one is written as it comes. A group
/// commit at the gateway's peak is ~50 frames (200 KiB); the cap bounds the memory of an
/// unusually large transaction.
pub const CAP: usize = 1 << 20;

/// The most passed to the wrapped VFS in one write. The unix VFS writes at most 128 KiB - 1
/// bytes a call (`seekAndWriteFd` masks the length with `0x1ffff`) and reports a longer write
/// as a full disk, so a longer run goes in pieces: 31 pages, two calls for a commit of 50 frames.
const WRITE_MAX: usize = 31 * 4096;

/// A file of this VFS: SQLite's header, then our state; the wrapped VFS's file follows at
/// [`real_offset`].
#[repr(C)]
struct File {
    /// Must come first: SQLite reads `pMethods` through the pointer it allocated.
    base: ffi::sqlite3_file,
    /// The wrapped VFS's file, inside the same allocation.
    real: *mut ffi::sqlite3_file,
    /// Whether this is a WAL file (only those are buffered).
    wal: bool,
    /// File offset of `buf[0]`.
    start: i64,
    /// WAL bytes written by SQLite and not yet passed on.
    buf: Vec<u8>,
}

/// Where the wrapped file starts: after [`File`], rounded up to 8 bytes.
const fn real_offset() -> usize {
    (std::mem::size_of::<File>() + 7) & !7
}

#[cfg(test)]
thread_local! {
    /// Runs written by [`flush`] on this thread, so a test can see its frames gathered.
    static RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The outcome of the one registration, shared by every caller.
static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();

/// Registers the VFS under [`NAME`], wrapping the default VFS. Once per process; later calls
/// return the first call's outcome. It does not become the default.
pub fn register() -> Result<(), String> {
    let outcome = REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find and sqlite3_vfs_register are thread-safe; the VFS we
        // register is leaked, so it outlives every connection that uses it, as SQLite needs.
        unsafe {
            let real = ffi::sqlite3_vfs_find(ptr::null());
            if real.is_null() {
                return Err(ffi::SQLITE_ERROR);
            }
            let mut vfs: ffi::sqlite3_vfs = *real;
            vfs.pNext = ptr::null_mut();
            vfs.zName = NAME_C.as_ptr();
            vfs.pAppData = real.cast();
            vfs.szOsFile = match c_int::try_from(real_offset() + (*real).szOsFile.max(0) as usize) {
                Ok(n) => n,
                Err(_) => return Err(ffi::SQLITE_ERROR),
            };
            vfs.xOpen = Some(x_open);
            vfs.xDelete = Some(x_delete);
            vfs.xAccess = Some(x_access);
            vfs.xFullPathname = Some(x_full_pathname);
            vfs.xRandomness = Some(x_randomness);
            vfs.xSleep = Some(x_sleep);
            vfs.xCurrentTime = Some(x_current_time);
            vfs.xGetLastError = Some(x_get_last_error);
            if vfs.iVersion >= 2 {
                vfs.xCurrentTimeInt64 = Some(x_current_time_int64);
            }
            // xDlOpen and friends and the system-call hooks stay the wrapped VFS's: SQLite's
            // own VFSes ignore the VFS pointer in them, and the gateway loads no extensions.
            match ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0) {
                ffi::SQLITE_OK => Ok(()),
                rc => Err(rc),
            }
        }
    });
    outcome.map_err(|rc| format!("cannot register the {NAME} VFS (SQLite error {rc})"))
}

/// The wrapped VFS, kept in our VFS's `pAppData`.
unsafe fn inner(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    (*vfs).pAppData.cast()
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let real_vfs = inner(vfs);
    let f = file.cast::<File>();
    let real = file
        .cast::<u8>()
        .add(real_offset())
        .cast::<ffi::sqlite3_file>();
    // SQLite's memory is uninitialised until here: write, do not assign (which would drop).
    ptr::write(
        f,
        File {
            base: ffi::sqlite3_file {
                pMethods: ptr::null(),
            },
            real,
            wal: flags & ffi::SQLITE_OPEN_WAL != 0,
            start: 0,
            buf: Vec::new(),
        },
    );
    (*real).pMethods = ptr::null();
    let rc = match (*real_vfs).xOpen {
        Some(open) => open(real_vfs, name, real, flags, out_flags),
        None => ffi::SQLITE_ERROR,
    };
    // SQLite calls xClose exactly when pMethods is set, even after a failed open: mirror the
    // wrapped file, so that it is closed if (and only if) it needs closing.
    if !(*real).pMethods.is_null() {
        (*f).base.pMethods = &METHODS;
    }
    rc
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync: c_int,
) -> c_int {
    let r = inner(vfs);
    (*r).xDelete
        .map_or(ffi::SQLITE_IOERR_DELETE, |x| x(r, name, sync))
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let r = inner(vfs);
    (*r).xAccess
        .map_or(ffi::SQLITE_IOERR_ACCESS, |x| x(r, name, flags, out))
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let r = inner(vfs);
    (*r).xFullPathname
        .map_or(ffi::SQLITE_ERROR, |x| x(r, name, n, out))
}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let r = inner(vfs);
    (*r).xRandomness.map_or(0, |x| x(r, n, out))
}

unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    let r = inner(vfs);
    (*r).xSleep.map_or(0, |x| x(r, micros))
}

unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let r = inner(vfs);
    (*r).xCurrentTime.map_or(ffi::SQLITE_ERROR, |x| x(r, out))
}

unsafe extern "C" fn x_get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let r = inner(vfs);
    (*r).xGetLastError.map_or(0, |x| x(r, n, out))
}

unsafe extern "C" fn x_current_time_int64(vfs: *mut ffi::sqlite3_vfs, out: *mut i64) -> c_int {
    let r = inner(vfs);
    (*r).xCurrentTimeInt64
        .map_or(ffi::SQLITE_ERROR, |x| x(r, out))
}

/// The methods of every file of this VFS. Version 3, like the unix VFS's; a method the wrapped
/// file's (older) table lacks answers as SQLite's own code does for a missing one.
static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

/// Our state of a file SQLite passes in.
unsafe fn state<'a>(file: *mut ffi::sqlite3_file) -> &'a mut File {
    &mut *file.cast::<File>()
}

/// The wrapped file and its methods (set: our methods are installed only when its are).
unsafe fn real<'a>(f: &File) -> (*mut ffi::sqlite3_file, &'a ffi::sqlite3_io_methods) {
    (f.real, &*(*f.real).pMethods)
}

/// Writes the held run, if any, to the wrapped file. The run is dropped whatever the outcome:
/// after a failed write SQLite abandons the transaction, and the WAL past its last commit is
/// never read.
unsafe fn flush(f: &mut File) -> c_int {
    if f.buf.is_empty() {
        return ffi::SQLITE_OK;
    }
    #[cfg(test)]
    RUNS.with(|n| n.set(n.get() + 1));
    let (r, m) = real(f);
    let Some(write) = m.xWrite else {
        f.buf.clear();
        return ffi::SQLITE_IOERR_WRITE;
    };
    let mut rc = ffi::SQLITE_OK;
    let mut at = f.start;
    for piece in f.buf.chunks(WRITE_MAX) {
        // A piece is at most WRITE_MAX bytes, so its length fits a c_int.
        let n = piece.len() as c_int;
        rc = write(r, piece.as_ptr().cast(), n, at);
        if rc != ffi::SQLITE_OK {
            break;
        }
        at += i64::from(n);
    }
    f.buf.clear();
    rc
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let f = state(file);
    let flushed = flush(f);
    let (r, m) = real(f);
    let closed = m.xClose.map_or(ffi::SQLITE_OK, |x| x(r));
    // Our part of the allocation: SQLite frees the memory itself without dropping anything.
    ptr::drop_in_place(&mut f.buf);
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    out: *mut c_void,
    amt: c_int,
    off: i64,
) -> c_int {
    let f = state(file);
    if !f.buf.is_empty() {
        let end = f.start + f.buf.len() as i64;
        if off < end && off + i64::from(amt) > f.start {
            let rc = flush(f);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
    }
    let (r, m) = real(f);
    m.xRead
        .map_or(ffi::SQLITE_IOERR_READ, |x| x(r, out, amt, off))
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amt: c_int,
    off: i64,
) -> c_int {
    let f = state(file);
    let len = usize::try_from(amt).unwrap_or(0);
    if f.wal && len > 0 && len < CAP {
        let end = f.start + f.buf.len() as i64;
        if f.buf.is_empty() || off != end || f.buf.len() + len > CAP {
            let rc = flush(f);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            f.start = off;
        }
        if f.buf.capacity() == 0 {
            f.buf.reserve_exact(CAP);
        }
        f.buf
            .extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), len));
        return ffi::SQLITE_OK;
    }
    // Not a WAL, or a write too big to hold: in order, after what is held.
    let rc = flush(f);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (r, m) = real(f);
    m.xWrite
        .map_or(ffi::SQLITE_IOERR_WRITE, |x| x(r, data, amt, off))
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    let f = state(file);
    let rc = flush(f);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (r, m) = real(f);
    m.xTruncate
        .map_or(ffi::SQLITE_IOERR_TRUNCATE, |x| x(r, size))
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let f = state(file);
    let rc = flush(f);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (r, m) = real(f);
    m.xSync.map_or(ffi::SQLITE_IOERR_FSYNC, |x| x(r, flags))
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, out: *mut i64) -> c_int {
    let f = state(file);
    let rc = flush(f);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (r, m) = real(f);
    m.xFileSize.map_or(ffi::SQLITE_IOERR_FSTAT, |x| x(r, out))
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (r, m) = real(state(file));
    m.xLock.map_or(ffi::SQLITE_IOERR_LOCK, |x| x(r, level))
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (r, m) = real(state(file));
    m.xUnlock.map_or(ffi::SQLITE_IOERR_UNLOCK, |x| x(r, level))
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let (r, m) = real(state(file));
    m.xCheckReservedLock
        .map_or(ffi::SQLITE_IOERR_CHECKRESERVEDLOCK, |x| x(r, out))
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    let (r, m) = real(state(file));
    m.xFileControl
        .map_or(ffi::SQLITE_NOTFOUND, |x| x(r, op, arg))
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (r, m) = real(state(file));
    m.xSectorSize.map_or(4096, |x| x(r))
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (r, m) = real(state(file));
    m.xDeviceCharacteristics.map_or(0, |x| x(r))
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let (r, m) = real(state(file));
    match m.xShmMap {
        Some(x) if m.iVersion >= 2 => x(r, page, size, extend, out),
        _ => ffi::SQLITE_IOERR_SHMMAP,
    }
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    off: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    let (r, m) = real(state(file));
    match m.xShmLock {
        Some(x) if m.iVersion >= 2 => x(r, off, n, flags),
        _ => ffi::SQLITE_IOERR_SHMLOCK,
    }
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    let (r, m) = real(state(file));
    if let Some(x) = m.xShmBarrier.filter(|_| m.iVersion >= 2) {
        x(r);
    }
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    let (r, m) = real(state(file));
    match m.xShmUnmap {
        Some(x) if m.iVersion >= 2 => x(r, delete),
        _ => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn x_fetch(
    file: *mut ffi::sqlite3_file,
    off: i64,
    amt: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let f = state(file);
    // A mapping of the WAL is never asked for; if it were, it must see what is held.
    let rc = flush(f);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (r, m) = real(f);
    match m.xFetch {
        Some(x) if m.iVersion >= 3 => x(r, off, amt, out),
        _ => {
            // "No mapping": SQLite then reads with xRead.
            *out = ptr::null_mut();
            ffi::SQLITE_OK
        }
    }
}

unsafe extern "C" fn x_unfetch(file: *mut ffi::sqlite3_file, off: i64, p: *mut c_void) -> c_int {
    let (r, m) = real(state(file));
    match m.xUnfetch {
        Some(x) if m.iVersion >= 3 => x(r, off, p),
        _ => ffi::SQLITE_OK,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    /// The one value `sql` selects.
    fn one<T: rusqlite::types::FromSql>(c: &Connection, sql: &str) -> T {
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn writer(path: &std::path::Path) -> Connection {
        register().unwrap();
        let c = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), NAME).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .unwrap();
        c
    }

    #[test]
    fn commits_are_seen_by_connections_of_the_default_vfs_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let w = writer(&path);
        w.execute_batch("CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)")
            .unwrap();
        let reader = Connection::open(&path).unwrap();
        let mut most = 0;
        for round in 0..50i64 {
            let runs = RUNS.with(|n| n.get());
            let tx = w.unchecked_transaction().unwrap();
            for i in 0..40i64 {
                // Rows of ~1 KiB: several pages, several frames, per commit.
                tx.execute(
                    "INSERT INTO t(k, v) VALUES (?1, ?2)",
                    rusqlite::params![round * 40 + i, "x".repeat(1000)],
                )
                .unwrap();
            }
            tx.commit().unwrap();
            most = most.max(RUNS.with(|n| n.get()) - runs);
            let n: i64 = one(&reader, "SELECT COUNT(*) FROM t");
            assert_eq!(
                n,
                (round + 1) * 40,
                "a reader sees each commit as it returns"
            );
        }
        // ~12 frames a commit, 24 writes from SQLite: gathered into one run.
        assert_eq!(most, 1, "a commit's frames are written in one run");
        drop(reader);
        drop(w);
        let again = Connection::open(&path).unwrap();
        let n: i64 = one(&again, "SELECT COUNT(*) FROM t");
        assert_eq!(n, 2000);
        let ok: String = one(&again, "PRAGMA integrity_check");
        assert_eq!(ok, "ok");
    }

    #[test]
    fn pages_rewritten_and_read_back_within_a_transaction_stay_right() {
        // A one-page cache makes SQLite spill pages to the WAL mid-transaction, write some of
        // them again in place and read them back: writes that do not continue the held run,
        // and reads of it, must see what was written last.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let w = writer(&path);
        w.execute_batch("PRAGMA cache_size=1; CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)")
            .unwrap();
        let tx = w.unchecked_transaction().unwrap();
        for i in 0..500i64 {
            tx.execute(
                "INSERT INTO t(k, v) VALUES (?1, ?2)",
                rusqlite::params![i, format!("{i}-{}", "y".repeat(300))],
            )
            .unwrap();
        }
        for i in (0..500i64).step_by(3) {
            tx.execute(
                "UPDATE t SET v = ?2 WHERE k = ?1",
                rusqlite::params![i, format!("{i}-updated")],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let reader = Connection::open(&path).unwrap();
        let updated: i64 = one(&reader, "SELECT COUNT(*) FROM t WHERE v LIKE '%-updated'");
        assert_eq!(updated, 167);
        let sum: i64 = one(&reader, "SELECT SUM(k) FROM t");
        assert_eq!(sum, 499 * 500 / 2);
        let ok: String = one(&reader, "PRAGMA integrity_check");
        assert_eq!(ok, "ok");
    }

    #[test]
    fn a_checkpoint_and_a_restarted_wal_keep_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let w = writer(&path);
        w.execute_batch("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)")
            .unwrap();
        for round in 0..20i64 {
            w.execute("INSERT INTO t(k, v) VALUES (?1, zeroblob(5000))", [round])
                .unwrap();
            if round % 5 == 4 {
                // Copies the WAL back; the next commit starts it over at offset 0.
                w.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                    .unwrap();
            }
        }
        drop(w);
        let c = Connection::open(&path).unwrap();
        let n: i64 = one(&c, "SELECT COUNT(*) FROM t");
        assert_eq!(n, 20);
    }

    #[test]
    fn the_wal_is_synced_after_its_last_frame() {
        // The soundness argument (crate doc) needs power-safe overwrite: without it SQLite
        // writes the end of a commit's padding after the sync. Fails if the bundled SQLite's
        // default ever changes.
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir.path().join("t.db"));
        let mut psow: c_int = -1;
        // SAFETY: a valid open handle, a known opcode whose argument is an int that -1 queries.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                w.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_POWERSAFE_OVERWRITE,
                (&mut psow as *mut c_int).cast(),
            )
        };
        assert_eq!(rc, ffi::SQLITE_OK);
        assert_eq!(psow, 1, "power-safe overwrite is on");
        assert_eq!(one::<i64>(&w, "PRAGMA synchronous"), 2, "FULL");
    }

    #[test]
    fn registering_twice_is_harmless() {
        register().unwrap();
        register().unwrap();
    }
}

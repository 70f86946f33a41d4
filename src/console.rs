//! Windows release builds are GUI-subsystem programs (no console window behind the mascot),
//! so they start without a console: run from a terminal (`desktop-mate.exe check`), their
//! output would go nowhere. [`attach_parent_console`] attaches the terminal commands (not the
//! mascot: it would then die with the terminal) to the terminal's console when standard
//! output or error is not already a file or pipe. A no-op elsewhere.

/// Attaches to the parent process's console when standard output or error has no handle
/// (Windows).
#[cfg(windows)]
pub fn attach_parent_console() {
    use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
    use windows_sys::Win32::System::Console::{
        ATTACH_PARENT_PROCESS, AttachConsole, GetStdHandle, STD_ERROR_HANDLE, STD_OUTPUT_HANDLE,
    };
    // SAFETY: plain Win32 calls without pointers; a failing AttachConsole (no parent console,
    // started from Explorer) changes nothing.
    #[allow(unsafe_code)]
    unsafe {
        let missing = |handle: windows_sys::Win32::Foundation::HANDLE| {
            handle.is_null() || handle == INVALID_HANDLE_VALUE
        };
        if missing(GetStdHandle(STD_OUTPUT_HANDLE)) || missing(GetStdHandle(STD_ERROR_HANDLE)) {
            AttachConsole(ATTACH_PARENT_PROCESS);
        }
    }
}

/// Attaches to the parent process's console when standard output or error has no handle
/// (Windows).
#[cfg(not(windows))]
pub fn attach_parent_console() {}

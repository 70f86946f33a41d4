//! Windows release builds are GUI-subsystem programs (no console window behind the mascot),
//! so they start without a console: run from a terminal (`desktop-mate.exe check`), their
//! output would go nowhere. [`attach_parent_console`] attaches to the terminal's console when
//! the standard output is not already a file or pipe. A no-op elsewhere.

/// Attaches to the parent process's console when standard output has no handle (Windows).
#[cfg(windows)]
pub fn attach_parent_console() {
    use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
    use windows_sys::Win32::System::Console::{
        ATTACH_PARENT_PROCESS, AttachConsole, GetStdHandle, STD_OUTPUT_HANDLE,
    };
    // SAFETY: plain Win32 calls without pointers; a failing AttachConsole (no parent console,
    // started from Explorer) changes nothing.
    #[allow(unsafe_code)]
    unsafe {
        let out = GetStdHandle(STD_OUTPUT_HANDLE);
        if out.is_null() || out == INVALID_HANDLE_VALUE {
            AttachConsole(ATTACH_PARENT_PROCESS);
        }
    }
}

/// Attaches to the parent process's console when standard output has no handle (Windows).
#[cfg(not(windows))]
pub fn attach_parent_console() {}

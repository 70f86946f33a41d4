//! Click-through on a native Wayland session (no XWayland). A Wayland client cannot read the
//! pointer outside its own surface, so the way of X11 and Windows (switch hit-testing on and
//! off from the pointer's position, `pointer.rs`) cannot work there: once a surface lets the
//! pointer through it never learns that the pointer came back. Wayland's own answer is the
//! surface's *input region* (`wl_surface.set_input_region`): the compositor delivers pointer
//! events only inside it. The window sets it to the drawn pixels of the hit mask
//! ([`super::hit_mask::HitMask::rectangles`]) whenever it changes.
//!
//! winit exposes only all-or-nothing hit-testing, so the request is sent on winit's own
//! `wl_surface`, through the same libwayland connection (a "guest" `wayland-client`
//! connection over winit's `wl_display`, with its own event queue and its own
//! `wl_compositor` to make the regions). The region takes effect with the surface's next
//! commit, which the renderer makes with every frame it presents.
//!
//! One implementation per platform, same contract as `pointer.rs`: elsewhere (X11, Windows,
//! macOS, a build without the `wayland` feature) [`InputRegion::connect`] says why not, and
//! the window keeps its whole surface for input (or the pointer-driven hit test).

use raw_window_handle::{RawDisplayHandle, RawWindowHandle};

#[cfg(all(target_os = "linux", feature = "wayland"))]
mod imp {
    use raw_window_handle::{RawDisplayHandle, RawWindowHandle};
    use wayland_client::backend::{Backend, ObjectId};
    use wayland_client::globals::{GlobalListContents, registry_queue_init};
    use wayland_client::protocol::wl_compositor::WlCompositor;
    use wayland_client::protocol::wl_region::WlRegion;
    use wayland_client::protocol::wl_registry::WlRegistry;
    use wayland_client::protocol::wl_surface::WlSurface;
    use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle};

    /// Our event queue's state: nothing of ours receives events that matter.
    pub struct Events;

    impl Dispatch<WlRegistry, GlobalListContents> for Events {
        fn event(
            _: &mut Self,
            _: &WlRegistry,
            _: <WlRegistry as Proxy>::Event,
            _: &GlobalListContents,
            _: &Connection,
            _: &QueueHandle<Self>,
        ) {
        }
    }

    // wl_compositor and wl_region send no events; anything a compositor sends anyway is
    // ignored rather than trusted.
    wayland_client::delegate_noop!(Events: ignore WlCompositor);
    wayland_client::delegate_noop!(Events: ignore WlRegion);

    pub struct InputRegion {
        connection: Connection,
        queue: EventQueue<Events>,
        compositor: WlCompositor,
        surface: WlSurface,
    }

    impl InputRegion {
        /// # Safety
        /// The handles must be a live window's (winit's `wl_display` and `wl_surface`), and
        /// the window must outlive the returned value.
        #[allow(unsafe_code)]
        pub unsafe fn connect(
            display: RawDisplayHandle,
            window: RawWindowHandle,
        ) -> Result<Self, String> {
            let (RawDisplayHandle::Wayland(display), RawWindowHandle::Wayland(window)) =
                (display, window)
            else {
                return Err("the window is not a Wayland surface".to_owned());
            };
            // SAFETY: winit's wl_display, alive as long as its window, which the caller keeps
            // alive longer than this connection. A guest backend never closes the display.
            let backend = unsafe { Backend::from_foreign_display(display.display.as_ptr().cast()) };
            let connection = Connection::from_backend(backend);
            let (globals, queue) = registry_queue_init::<Events>(&connection)
                .map_err(|e| format!("cannot read the Wayland globals: {e}"))?;
            let compositor: WlCompositor = globals
                .bind(&queue.handle(), 1..=4, ())
                .map_err(|e| format!("no wl_compositor: {e}"))?;
            // SAFETY: winit's wl_surface of the same live window (see above).
            let id = unsafe {
                ObjectId::from_ptr(WlSurface::interface(), window.surface.as_ptr().cast())
            }
            .map_err(|_| "the window's handle is not a wl_surface".to_owned())?;
            let surface = WlSurface::from_id(&connection, id)
                .map_err(|_| "the window's wl_surface is gone".to_owned())?;
            // Managed by this build's wayland-client (winit's, the same crate): then the proxy
            // shares winit's "alive" flag, and a request after winit destroyed the surface is
            // refused instead of reaching freed memory. A foreign proxy has no such flag.
            if surface.object_data().is_none() {
                return Err("the window's wl_surface is not managed by this build's \
                            wayland-client"
                    .to_owned());
            }
            Ok(Self {
                connection,
                queue,
                compositor,
                surface,
            })
        }

        pub fn set(&mut self, rectangles: Option<&[[i32; 4]]>) -> Result<(), String> {
            // Events for our objects (globals announced later) are dropped here.
            self.queue
                .dispatch_pending(&mut Events)
                .map_err(|e| format!("Wayland: {e}"))?;
            match rectangles {
                None => self.surface.set_input_region(None),
                Some(rectangles) => {
                    let region = self.compositor.create_region(&self.queue.handle(), ());
                    for &[x, y, width, height] in rectangles {
                        region.add(x, y, width, height);
                    }
                    self.surface.set_input_region(Some(&region));
                    // The surface keeps a copy: the region object is no longer needed.
                    region.destroy();
                }
            }
            self.connection.flush().map_err(|e| format!("Wayland: {e}"))
        }
    }
}

#[cfg(not(all(target_os = "linux", feature = "wayland")))]
mod imp {
    use raw_window_handle::{RawDisplayHandle, RawWindowHandle};

    pub struct InputRegion;

    impl InputRegion {
        /// # Safety
        /// Nothing to uphold here; the same contract as the Wayland implementation.
        #[allow(unsafe_code)]
        pub unsafe fn connect(
            _display: RawDisplayHandle,
            _window: RawWindowHandle,
        ) -> Result<Self, String> {
            Err("input regions are a Wayland feature (this build or platform has none)".to_owned())
        }

        pub fn set(&mut self, _rectangles: Option<&[[i32; 4]]>) -> Result<(), String> {
            Ok(())
        }
    }
}

/// The window's input region, when it is a native Wayland surface.
pub use imp::InputRegion;

/// Whether these handles are a Wayland surface's (the only kind with an input region to set).
pub fn is_wayland(display: RawDisplayHandle, window: RawWindowHandle) -> bool {
    matches!(
        (display, window),
        (RawDisplayHandle::Wayland(_), RawWindowHandle::Wayland(_))
    )
}

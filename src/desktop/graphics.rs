//! What the window can draw with, asked before the app is built: the graphics adapters wgpu
//! finds (Vulkan, DirectX 12, Metal or GL, as Bevy will ask), so that a machine without a
//! driver gets a sentence instead of Bevy's panic, and `check` can tell a user why the window
//! stays empty. Bevy-free (wgpu; `block_on` from futures-lite, re-exported by bevy_tasks).

use serde::Serialize;

/// One adapter, as `check` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Renderer {
    pub name: String,
    /// `Vulkan`, `Dx12`, `Metal`, `Gl`.
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` (software), `Other`.
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
}

/// Every adapter this machine offers Bevy.
pub fn renderers() -> Vec<Renderer> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    bevy::tasks::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .map(|adapter| {
            let info = adapter.get_info();
            Renderer {
                name: info.name,
                backend: format!("{:?}", info.backend),
                device_type: format!("{:?}", info.device_type),
                driver: info.driver,
                driver_info: info.driver_info,
            }
        })
        .collect()
}

/// `Err` with what to do when nothing can draw the window (Bevy would panic with "Unable to
/// find a GPU!").
pub fn check(renderers: &[Renderer]) -> Result<(), String> {
    if renderers.is_empty() {
        return Err(NO_RENDERER.to_owned());
    }
    Ok(())
}

const NO_RENDERER: &str = "no graphics driver to draw the mascot's window with (Vulkan, \
    DirectX 12, Metal or OpenGL): install your GPU's driver, or without a GPU Mesa's \
    software one (Debian/Ubuntu: apt install mesa-vulkan-drivers); `desktop-mate check` and \
    `desktop-mate chat` need none";

/// Why the transparent window would stay empty with these adapters, if it would: Mesa's
/// software Vulkan driver (lavapipe) before Mesa 23 presents nothing into an X11 window of
/// depth 32 (measured with Debian 12's 22.3.6; 25.0.7 draws it), and Bevy takes it only when
/// no GPU is there. On native Wayland the same 22.3.6 draws the transparent window (measured
/// under weston, `tests/it/wayland.rs`): no warning there.
pub fn blank_transparent_window(renderers: &[Renderer]) -> Option<String> {
    if !cfg!(target_os = "linux")
        || super::display::native_wayland()
        || renderers.iter().any(|r| r.device_type != "Cpu")
    {
        return None;
    }
    let old = renderers
        .iter()
        .find(|r| r.driver == "llvmpipe" && mesa_major(&r.driver_info).is_some_and(|v| v < 23))?;
    Some(format!(
        "the only renderer is Mesa's software one ({}, {}), which before Mesa 23 draws \
         nothing in a transparent window: the mascot's window will look empty; update Mesa \
         (Debian 12: mesa-vulkan-drivers from bookworm-backports) or use a GPU driver",
        old.name, old.driver_info
    ))
}

/// 22 from "Mesa 22.3.6-1+deb12u2 (LLVM 15.0.6)".
fn mesa_major(driver_info: &str) -> Option<u32> {
    let version = driver_info.split("Mesa ").nth(1)?;
    version.split('.').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renderer(device_type: &str, driver: &str, driver_info: &str) -> Renderer {
        Renderer {
            name: "llvmpipe (LLVM 15.0.6, 256 bits)".into(),
            backend: "Vulkan".into(),
            device_type: device_type.into(),
            driver: driver.into(),
            driver_info: driver_info.into(),
        }
    }

    #[test]
    fn no_adapter_is_a_sentence_naming_the_package() {
        let err = check(&[]).expect_err("nothing to draw with");
        assert!(err.contains("mesa-vulkan-drivers"), "{err}");
        assert!(check(&[renderer("Cpu", "llvmpipe", "Mesa 25.0.7")]).is_ok());
    }

    #[test]
    fn only_old_mesa_software_rendering_leaves_the_window_blank() {
        let old = renderer("Cpu", "llvmpipe", "Mesa 22.3.6-1+deb12u2 (LLVM 15.0.6)");
        let new = renderer("Cpu", "llvmpipe", "Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)");
        let gpu = renderer(
            "IntegratedGpu",
            "Intel open-source Mesa driver",
            "Mesa 22.3.6",
        );
        assert_eq!(mesa_major(&old.driver_info), Some(22));
        assert_eq!(mesa_major("no version"), None);
        let blank = blank_transparent_window(std::slice::from_ref(&old));
        assert_eq!(blank.is_some(), cfg!(target_os = "linux"));
        if let Some(reason) = blank {
            assert!(reason.contains("Mesa 22.3.6"), "{reason}");
        }
        assert_eq!(blank_transparent_window(&[new]), None);
        // Bevy takes the GPU when there is one.
        assert_eq!(blank_transparent_window(&[old, gpu]), None);
    }
}

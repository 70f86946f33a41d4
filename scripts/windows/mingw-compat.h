/* Force-included (-include) into every C/C++ file of llama.cpp when it is cross-built for
 * Windows with Debian 12's MinGW (scripts/build-windows.sh). Two gaps of that toolchain:
 *
 * 1. mingw-w64 10's headers predate the thread power-throttling declarations ggml-cpu.c uses
 *    (Windows 10 1709 API): declared here when absent.
 * 2. GCC 12's AMX intrinsics (_tile_loadd/_tile_stream_loadd/_tile_stored, amxtileintrin.h)
 *    cast the stride to `long`, which is 32 bits on Windows: the assembler then rejects
 *    `(%rax,%edi,1)` in ggml's AMX CPU module. Redefined here with a 64-bit stride, as newer
 *    GCC does (only in the files compiled with -mamx-tile, i.e. ggml-cpu-sapphirerapids).
 */
#ifndef DESKTOP_MATE_MINGW_COMPAT_H
#define DESKTOP_MATE_MINGW_COMPAT_H
#ifdef _WIN32
#include <windows.h>
#ifndef THREAD_POWER_THROTTLING_CURRENT_VERSION
#define THREAD_POWER_THROTTLING_CURRENT_VERSION 1
#define THREAD_POWER_THROTTLING_EXECUTION_SPEED 0x1
typedef struct _THREAD_POWER_THROTTLING_STATE {
    ULONG Version;
    ULONG ControlMask;
    ULONG StateMask;
} THREAD_POWER_THROTTLING_STATE;
#endif

#if defined(__AMX_TILE__) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#include <immintrin.h>
#undef _tile_loadd_internal
#define _tile_loadd_internal(dst, base, stride)                                              \
    __asm__ volatile("{tileloadd\t(%0,%1,1), %%tmm" #dst "|tileloadd\t%%tmm" #dst           \
                     ", [%0+%1*1]}" ::"r"((const void *)(base)),                            \
                     "r"((long long)(stride)))
#undef _tile_stream_loadd_internal
#define _tile_stream_loadd_internal(dst, base, stride)                                       \
    __asm__ volatile("{tileloaddt1\t(%0,%1,1), %%tmm" #dst "|tileloaddt1\t%%tmm" #dst       \
                     ", [%0+%1*1]}" ::"r"((const void *)(base)),                            \
                     "r"((long long)(stride)))
#undef _tile_stored_internal
#define _tile_stored_internal(src, base, stride)                                             \
    __asm__ volatile("{tilestored\t%%tmm" #src ", (%0,%1,1)|tilestored\t[%0+%1*1], %%tmm" #src \
                     "}" ::"r"((void *)(base)),                                             \
                     "r"((long long)(stride))                                               \
                     : "memory")
#endif
#endif
#endif

/* Test-only stand-in for Windows' bcryptprimitives.dll under Wine 8 (Debian 12), which lacks it.
 * Rust's standard library (1.78+) imports ProcessPrng from it, present on every Windows 10/11,
 * so the real exe needs nothing: scripts/test-windows.sh builds this into the throw-away Wine
 * prefix's system32 only. Never shipped. Same contract: fill the buffer, always TRUE. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom, advapi32 */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x7fffffff ? 0x7fffffff : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

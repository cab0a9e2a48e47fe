/*
 * bcryptprimitives.dll for Wine 8.0, which lacks ProcessPrng: programs built
 * by Rust >= 1.78 import it (std's random source) and do not start without
 * it. Implemented on advapi32's SystemFunction036 (RtlGenRandom), which
 * Wine has. Built by scripts/test-windows.sh with mingw and copied into the
 * test prefix's system32; never shipped.
 */
#include <windows.h>

/* RtlGenRandom: exported by advapi32 under this name. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    /* RtlGenRandom takes a ULONG length: fill large requests in chunks. */
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    /* Like Windows' ProcessPrng, which is documented to always succeed. */
    return TRUE;
}

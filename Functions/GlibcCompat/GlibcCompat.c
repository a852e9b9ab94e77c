// The Swift standard library, linked statically, calls hypot and hypotf. Linked against glibc 2.35 or
// newer, those bind to the GLIBC_2.35 versions, which provided.al2023 (glibc 2.34) lacks, and the
// bootstrap would not start there. These hidden definitions satisfy the calls inside the executable and
// forward to the oldest versions, which every glibc has. Hidden, because SwiftPM links with
// -export-dynamic: an exported `hypot` would bind the old-version reference to itself and recurse.
#include <features.h>
#include "GlibcCompat.h"

int martlet_glibc_compat_linked(void) { return 1; }

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#if defined(__x86_64__)
#define MARTLET_OLD_LIBM "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define MARTLET_OLD_LIBM "GLIBC_2.17"
#endif

#ifdef MARTLET_OLD_LIBM
double martlet_old_hypot(double, double);
float martlet_old_hypotf(float, float);
__asm__(".symver martlet_old_hypot,hypot@" MARTLET_OLD_LIBM);
__asm__(".symver martlet_old_hypotf,hypotf@" MARTLET_OLD_LIBM);

__attribute__((visibility("hidden"))) double hypot(double x, double y) { return martlet_old_hypot(x, y); }
__attribute__((visibility("hidden"))) float hypotf(float x, float y) { return martlet_old_hypotf(x, y); }
#endif
#endif

// libstdc++, linked statically by scripts/package (provided.al2023's is older than ours), calls
// arc4random, which glibc only has from 2.36. A hidden definition over getrandom (glibc 2.25)
// satisfies it inside the executable.
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 36))
#include <stdint.h>
#include <sys/random.h>
__attribute__((visibility("hidden"))) uint32_t arc4random(void) {
    uint32_t value = 0;
    while (getrandom(&value, sizeof value, 0) != (ssize_t)sizeof value) {}
    return value;
}
#endif

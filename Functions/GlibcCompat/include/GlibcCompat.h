// Definitions that keep the `bootstrap` startable on Lambda's provided.al2023 (glibc 2.34) when it is
// built on a newer glibc. Nothing to call: linking the target is what matters.
#pragma once
int martlet_glibc_compat_linked(void);

/* lwIP's platform glue for keel: Linux user space, musl, x86-64. */
#ifndef KEEL_LWIP_ARCH_CC_H
#define KEEL_LWIP_ARCH_CC_H

#include <stdio.h>
#include <stdlib.h>

#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)
/* lwIP runs in the network child, never in PID 1 itself: a broken invariant ends that child. */
#define LWIP_PLATFORM_ASSERT(x) do { fprintf(stderr, "lwip assertion: %s (%s:%d)\n", x, __FILE__, __LINE__); abort(); } while (0)

unsigned int net_lwip_rand(void);
#define LWIP_RAND() ((u32_t)net_lwip_rand())

#endif

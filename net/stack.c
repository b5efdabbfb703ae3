/* lwIP platform hooks (time, randomness) and one-time stack initialisation. */
#include <sys/random.h>
#include <time.h>

#include "lwip/init.h"
#include "lwip/sys.h"
#include "net/net.h"

u32_t sys_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u32_t)((u64_t)ts.tv_sec * 1000u + (u64_t)ts.tv_nsec / 1000000u);
}

unsigned int net_lwip_rand(void)
{
	unsigned int r = 0;

	/* Only TCP initial sequence numbers and ports depend on it; a short read keeps r as is. */
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r ^= (unsigned int)sys_now() * 2654435761u;
	return r;
}

const char *net_stack_version(void)
{
	static int done;

	if (!done) {
		lwip_init();
		done = 1;
	}
	return LWIP_VERSION_STRING;
}

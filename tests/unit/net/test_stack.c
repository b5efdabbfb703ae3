/* The lwIP and BearSSL builds keel links are usable. */
#include <string.h>

#include "lwip/init.h"
#include "net/net.h"
#include "tests/harness.h"

TEST(lwip_initialises_and_reports_2_1_3)
{
	CHECK_STR(net_stack_version(), "2.1.3");
	CHECK_STR(net_stack_version(), "2.1.3"); /* idempotent */
}

TEST(bearssl_sha256_known_answer)
{
	CHECK(strstr(net_tls_selftest(), "ok") != NULL);
}

/* net: the lwIP stack over the board's NIC, the update listener, BearSSL TLS, and `keel push`. */
#ifndef KEEL_NET_H
#define KEEL_NET_H

/* Initialises lwIP once (idempotent) and returns its version string. */
const char *net_stack_version(void);
/* Runs a known-answer check of the BearSSL primitives keel uses; returns a short verdict. */
const char *net_tls_selftest(void);

#endif

/* `keel version`: keel's version and the versions of musl, lwIP and BearSSL linked in. */
#include <stdio.h>
#include <string.h>

#include "keel_config.h"
#include "init/init.h"
#include "net/net.h"
#include "snap/snap.h"
#include "vmm/vmm.h"

static const char help[] =
	"usage: keel version [--capabilities]\n"
	"  Prints keel's version and the versions of the libraries it was built with.\n"
	"  --capabilities  the SNAPPACK wire version and the capabilities this build offers\n";

int init_cmd_version(int argc, char **argv)
{
	int caps = 0;

	if (cli_wants_help(argc, argv))
		return cli_help(help);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--capabilities"))
			caps = 1;
		else
			return cli_usage(argv[0], "unknown argument '%s'", argv[i]);
	}
	if (caps)
		return snap_print_capabilities(stdout) < 0 ? 1 : 0;
	printf("keel %s (board %s)\n", KEEL_VERSION, CONFIG_BOARD_NAME);
	printf("musl %s\n", KEEL_MUSL_VERSION);
	printf("lwip %s\n", net_stack_version());
	printf("bearssl %s (%s)\n", KEEL_BEARSSL_VERSION, net_tls_selftest());
	printf("blake3 %s\n", snap_b3_impl());
	int kvm = vmm_kvm_api_version();
	if (kvm >= 0)
		printf("kvm api %d\n", kvm);
	else
		printf("kvm unavailable (%s)\n", strerror(-kvm));
	return 0;
}

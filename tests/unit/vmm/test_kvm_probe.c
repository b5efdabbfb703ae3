/* /dev/kvm speaks the stable API (KVM_API_VERSION 12) where it exists. */
#include <errno.h>
#include <unistd.h>

#include "tests/harness.h"
#include "vmm/vmm.h"

TEST(kvm_api_version_is_12)
{
	int v;

	if (access("/dev/kvm", F_OK) != 0)
		t_skip("no /dev/kvm on this machine");
	v = vmm_kvm_api_version();
	CHECK_EQ(v, 12);
}

/* Is /dev/kvm there and does it speak the stable API? */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/vmm.h"

int vmm_kvm_api_version(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int v;

	if (fd < 0)
		return -errno;
	v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v < 0)
		v = -errno;
	close(fd);
	return v;
}

/* vmm: keel's KVM microVM monitor — boot Linux guests, snapshot them, restore them. */
#ifndef KEEL_VMM_H
#define KEEL_VMM_H

/* KVM_GET_API_VERSION of /dev/kvm, or -errno when KVM is not usable. */
int vmm_kvm_api_version(void);

#endif

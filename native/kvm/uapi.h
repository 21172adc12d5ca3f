// <linux/kvm.h> for C++. The uapi headers of Linux 6.1 (Debian 12) declare
// flexible arrays with __DECLARE_FLEX_ARRAY, whose empty struct has size 1
// in C++ instead of 0: kvm_cpuid2, kvm_msrs and kvm_irq_routing come out
// larger, their `entries` move, and the ioctl numbers built from their
// sizes (KVM_SET_CPUID2, KVM_GET_MSRS, KVM_SET_GSI_ROUTING, ...) are ones
// the kernel does not know. Use the definition later kernels adopted for C++.
#pragma once
#include <linux/stddef.h>
#ifdef __cplusplus
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]
#endif
#include <linux/kvm.h>
#include <cstddef>

static_assert(sizeof(kvm_cpuid2) == 8 && offsetof(kvm_cpuid2, entries) == 8, "kvm_cpuid2 layout");
static_assert(sizeof(kvm_msrs) == 8 && offsetof(kvm_msrs, entries) == 8, "kvm_msrs layout");
static_assert(sizeof(kvm_irq_routing) == 8 && offsetof(kvm_irq_routing, entries) == 8, "kvm_irq_routing layout");
static_assert(KVM_SET_GSI_ROUTING == 0x4008ae6aUL, "KVM_SET_GSI_ROUTING number");
static_assert(KVM_GET_SUPPORTED_CPUID == 0xc008ae05UL, "KVM_GET_SUPPORTED_CPUID number");
static_assert(KVM_SET_CPUID2 == 0x4008ae90UL && KVM_GET_CPUID2 == 0xc008ae91UL, "KVM_SET/GET_CPUID2 numbers");
static_assert(KVM_GET_MSRS == 0xc008ae88UL && KVM_SET_MSRS == 0x4008ae89UL, "KVM_GET/SET_MSRS numbers");

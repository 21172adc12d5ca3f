// kvm addon: /dev/kvm, VM and vCPU ioctls, the kvm_run mapping and the vCPU
// kick signal; eventfd, epoll and guest RAM mappings are in native/sys. Every
// file registers its functions here; struct layouts are exported by layout.cc
// so TypeScript encodes them.
#pragma once
#include <napi.h>
#include <cstring>
#include <string>
#include "../common/napi_util.h"

namespace xdpvm {
void InitKvmSystem(Napi::Env env, Napi::Object exports);
void InitKvmVm(Napi::Env env, Napi::Object exports);
void InitKvmVcpu(Napi::Env env, Napi::Object exports);
void InitKick(Napi::Env env, Napi::Object exports);
void InitKvmLayout(Napi::Env env, Napi::Object exports);

// A caller-encoded struct (TypeScript lays it out with the exported
// offsets): the byte range must be exactly the kernel's size.
inline Bytes ArgStruct(const Napi::CallbackInfo& info, size_t i, size_t size, const char* name) {
  Bytes b = ArgBytes(info, i, name);
  if (b.length != size)
    throw Napi::RangeError::New(info.Env(), std::string(name) + ": expected " + std::to_string(size) + " bytes");
  return b;
}

// A header-plus-entries struct (kvm_msrs, kvm_cpuid2, kvm_irq_routing):
// the count in its first u32 must fit in the bytes given.
inline Bytes ArgFlex(const Napi::CallbackInfo& info, size_t i, size_t header, size_t entry, const char* name) {
  Bytes b = ArgBytes(info, i, name);
  uint32_t n = 0;
  if (b.length >= header) memcpy(&n, b.data, sizeof n);
  if (b.length < header || header + size_t{n} * entry > b.length)
    throw Napi::RangeError::New(info.Env(), std::string(name) + ": entry count does not fit the buffer");
  return b;
}

}  // namespace xdpvm

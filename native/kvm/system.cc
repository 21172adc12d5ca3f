// The /dev/kvm file descriptor: API version, capabilities, VM creation,
// supported CPUID, the kvm_run mmap size.
#include "kvm.h"

#include <fcntl.h>
#include "uapi.h"
#include <sys/ioctl.h>
#include <unistd.h>

namespace xdpvm {
namespace {

// open(path = "/dev/kvm") -> fd (O_CLOEXEC: a spawned child must not keep VMs alive).
Napi::Value Open(const Napi::CallbackInfo& info) {
  std::string path = info.Length() > 0 && info[0].IsString() ? ArgString(info, 0, "path") : "/dev/kvm";
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw ErrnoError(info.Env(), ("open(" + path + ")").c_str(), errno);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value GetApiVersion(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  int r = ioctl(fd, KVM_GET_API_VERSION, 0);
  if (r < 0) throw ErrnoError(info.Env(), What("KVM_GET_API_VERSION", fd).c_str(), errno);
  return Napi::Number::New(info.Env(), r);
}

// checkExtension(fd, cap): works on the system fd and on a VM fd (per-VM answer).
Napi::Value CheckExtension(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  int cap = ArgInt(info, 1, "cap");
  int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
  if (r < 0) throw ErrnoError(info.Env(), What("KVM_CHECK_EXTENSION", fd).c_str(), errno);
  return Napi::Number::New(info.Env(), r);
}

Napi::Value CreateVm(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  int type = info.Length() > 1 ? ArgInt(info, 1, "type") : 0;
  int r = ioctl(fd, KVM_CREATE_VM, type);
  if (r < 0) throw ErrnoError(info.Env(), What("KVM_CREATE_VM", fd).c_str(), errno);
  return Napi::Number::New(info.Env(), r);
}

Napi::Value GetVcpuMmapSize(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  int r = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (r < 0) throw ErrnoError(info.Env(), What("KVM_GET_VCPU_MMAP_SIZE", fd).c_str(), errno);
  return Napi::Number::New(info.Env(), r);
}

// getSupportedCpuid(fd, kvm_cpuid2 bytes): nent is set from the buffer's
// capacity; returns the number of entries the kernel filled in.
Napi::Value GetSupportedCpuid(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  Bytes b = ArgBytes(info, 1, "cpuid");
  if (b.length < sizeof(kvm_cpuid2)) throw Napi::RangeError::New(info.Env(), "cpuid buffer too small");
  uint32_t nent = static_cast<uint32_t>((b.length - sizeof(kvm_cpuid2)) / sizeof(kvm_cpuid_entry2));
  memcpy(b.data + offsetof(kvm_cpuid2, nent), &nent, sizeof nent);
  if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, b.data) < 0)
    throw ErrnoError(info.Env(), What("KVM_GET_SUPPORTED_CPUID", fd).c_str(), errno);
  memcpy(&nent, b.data + offsetof(kvm_cpuid2, nent), sizeof nent);
  return Napi::Number::New(info.Env(), nent);
}

}  // namespace

void InitKvmSystem(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open));
  exports.Set("getApiVersion", Napi::Function::New(env, GetApiVersion));
  exports.Set("checkExtension", Napi::Function::New(env, CheckExtension));
  exports.Set("createVm", Napi::Function::New(env, CreateVm));
  exports.Set("getVcpuMmapSize", Napi::Function::New(env, GetVcpuMmapSize));
  exports.Set("getSupportedCpuid", Napi::Function::New(env, GetSupportedCpuid));
}

}  // namespace xdpvm

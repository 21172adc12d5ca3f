// vCPU file descriptor: the kvm_run mapping, KVM_RUN, and the register,
// MSR, CPUID, LAPIC and event state as caller-encoded structs.
#include "kvm.h"
#include "../common/mapping.h"

#include "uapi.h"
#include <sys/ioctl.h>
#include <sys/mman.h>

namespace xdpvm {
namespace {

// mapRun(vcpu, size): the kvm_run area (size from KVM_GET_VCPU_MMAP_SIZE).
// Released with unmap(); other threads reach it through alias().
Napi::Value MapRun(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "vcpu");
  int64_t size = ArgInt64(info, 1, "size");
  if (size < static_cast<int64_t>(sizeof(kvm_run))) throw Napi::RangeError::New(info.Env(), "kvm_run size too small");
  void* p = mmap(nullptr, static_cast<size_t>(size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw ErrnoError(info.Env(), What("mmap(kvm_run)", fd).c_str(), errno);
  return WrapMapping(info.Env(), p, static_cast<size_t>(size));
}

// run(vcpu) -> 0 or -errno. Blocks until the next exit: call it from the
// vCPU's worker thread. -EINTR means a signal or immediate_exit stopped it.
Napi::Value Run(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "vcpu");
  int r = ioctl(fd, KVM_RUN, 0);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : r);
}

// One fixed-size struct in, or out, through one ioctl.
template <unsigned long Request, typename T>
Napi::Value StructIoctl(const Napi::CallbackInfo& info, const char* call) {
  int fd = ArgInt(info, 0, "vcpu");
  Bytes b = ArgStruct(info, 1, sizeof(T), call);
  if (ioctl(fd, Request, b.data) < 0) throw ErrnoError(info.Env(), What(call, fd).c_str(), errno);
  return info.Env().Undefined();
}

Napi::Value GetRegs(const Napi::CallbackInfo& i) { return StructIoctl<KVM_GET_REGS, kvm_regs>(i, "KVM_GET_REGS"); }
Napi::Value SetRegs(const Napi::CallbackInfo& i) { return StructIoctl<KVM_SET_REGS, kvm_regs>(i, "KVM_SET_REGS"); }
Napi::Value GetSregs(const Napi::CallbackInfo& i) { return StructIoctl<KVM_GET_SREGS, kvm_sregs>(i, "KVM_GET_SREGS"); }
Napi::Value SetSregs(const Napi::CallbackInfo& i) { return StructIoctl<KVM_SET_SREGS, kvm_sregs>(i, "KVM_SET_SREGS"); }
Napi::Value GetFpu(const Napi::CallbackInfo& i) { return StructIoctl<KVM_GET_FPU, kvm_fpu>(i, "KVM_GET_FPU"); }
Napi::Value SetFpu(const Napi::CallbackInfo& i) { return StructIoctl<KVM_SET_FPU, kvm_fpu>(i, "KVM_SET_FPU"); }
Napi::Value GetLapic(const Napi::CallbackInfo& i) { return StructIoctl<KVM_GET_LAPIC, kvm_lapic_state>(i, "KVM_GET_LAPIC"); }
Napi::Value SetLapic(const Napi::CallbackInfo& i) { return StructIoctl<KVM_SET_LAPIC, kvm_lapic_state>(i, "KVM_SET_LAPIC"); }
Napi::Value GetVcpuEvents(const Napi::CallbackInfo& i) {
  return StructIoctl<KVM_GET_VCPU_EVENTS, kvm_vcpu_events>(i, "KVM_GET_VCPU_EVENTS");
}
Napi::Value GetMpState(const Napi::CallbackInfo& i) { return StructIoctl<KVM_GET_MP_STATE, kvm_mp_state>(i, "KVM_GET_MP_STATE"); }
Napi::Value SetMpState(const Napi::CallbackInfo& i) { return StructIoctl<KVM_SET_MP_STATE, kvm_mp_state>(i, "KVM_SET_MP_STATE"); }
Napi::Value SetVcpuEvents(const Napi::CallbackInfo& i) {
  return StructIoctl<KVM_SET_VCPU_EVENTS, kvm_vcpu_events>(i, "KVM_SET_VCPU_EVENTS");
}

// getMsrs/setMsrs(vcpu, kvm_msrs bytes) -> how many entries the kernel
// processed (it stops at the first MSR it rejects).
template <unsigned long Request>
Napi::Value MsrIoctl(const Napi::CallbackInfo& info, const char* call) {
  int fd = ArgInt(info, 0, "vcpu");
  Bytes b = ArgFlex(info, 1, sizeof(kvm_msrs), sizeof(kvm_msr_entry), call);
  int r = ioctl(fd, Request, b.data);
  if (r < 0) throw ErrnoError(info.Env(), What(call, fd).c_str(), errno);
  return Napi::Number::New(info.Env(), r);
}
Napi::Value GetMsrs(const Napi::CallbackInfo& i) { return MsrIoctl<KVM_GET_MSRS>(i, "KVM_GET_MSRS"); }
Napi::Value SetMsrs(const Napi::CallbackInfo& i) { return MsrIoctl<KVM_SET_MSRS>(i, "KVM_SET_MSRS"); }

// setCpuid2(vcpu, kvm_cpuid2 bytes): the guest's CPUID, before the first KVM_RUN.
Napi::Value SetCpuid2(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "vcpu");
  Bytes b = ArgFlex(info, 1, sizeof(kvm_cpuid2), sizeof(kvm_cpuid_entry2), "KVM_SET_CPUID2");
  if (ioctl(fd, KVM_SET_CPUID2, b.data) < 0) throw ErrnoError(info.Env(), What("KVM_SET_CPUID2", fd).c_str(), errno);
  return info.Env().Undefined();
}

// getCpuid2(vcpu, kvm_cpuid2 bytes) -> entries filled. The kernel fails
// with E2BIG exactly when nent is below its count, but (6.1 at least) never
// reports the count: not on success (nent is left as passed) nor with
// E2BIG (not copied back). So find it by bisection on nent, then fetch it.
Napi::Value GetCpuid2(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "vcpu");
  Bytes b = ArgBytes(info, 1, "cpuid");
  if (b.length < sizeof(kvm_cpuid2)) throw Napi::RangeError::New(info.Env(), "cpuid buffer too small");
  auto get = [&](uint32_t nent) {
    memcpy(b.data + offsetof(kvm_cpuid2, nent), &nent, sizeof nent);
    return ioctl(fd, KVM_GET_CPUID2, b.data) == 0 ? 0 : errno;
  };
  uint32_t lo = 0;
  uint32_t hi = static_cast<uint32_t>((b.length - sizeof(kvm_cpuid2)) / sizeof(kvm_cpuid_entry2));
  int err = get(hi);
  if (err != 0) throw ErrnoError(info.Env(), What("KVM_GET_CPUID2", fd).c_str(), err);
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    err = get(mid);
    if (err == 0) hi = mid;
    else if (err == E2BIG) lo = mid + 1;
    else throw ErrnoError(info.Env(), What("KVM_GET_CPUID2", fd).c_str(), err);
  }
  err = get(lo);
  if (err != 0) throw ErrnoError(info.Env(), What("KVM_GET_CPUID2", fd).c_str(), err);
  return Napi::Number::New(info.Env(), lo);
}

}  // namespace

void InitKvmVcpu(Napi::Env env, Napi::Object exports) {
  exports.Set("mapRun", Napi::Function::New(env, MapRun));
  exports.Set("run", Napi::Function::New(env, Run));
  exports.Set("getRegs", Napi::Function::New(env, GetRegs));
  exports.Set("setRegs", Napi::Function::New(env, SetRegs));
  exports.Set("getSregs", Napi::Function::New(env, GetSregs));
  exports.Set("setSregs", Napi::Function::New(env, SetSregs));
  exports.Set("getFpu", Napi::Function::New(env, GetFpu));
  exports.Set("setFpu", Napi::Function::New(env, SetFpu));
  exports.Set("getLapic", Napi::Function::New(env, GetLapic));
  exports.Set("setLapic", Napi::Function::New(env, SetLapic));
  exports.Set("getVcpuEvents", Napi::Function::New(env, GetVcpuEvents));
  exports.Set("getMpState", Napi::Function::New(env, GetMpState));
  exports.Set("setMpState", Napi::Function::New(env, SetMpState));
  exports.Set("setVcpuEvents", Napi::Function::New(env, SetVcpuEvents));
  exports.Set("getMsrs", Napi::Function::New(env, GetMsrs));
  exports.Set("setMsrs", Napi::Function::New(env, SetMsrs));
  exports.Set("setCpuid2", Napi::Function::New(env, SetCpuid2));
  exports.Set("getCpuid2", Napi::Function::New(env, GetCpuid2));
}

}  // namespace xdpvm

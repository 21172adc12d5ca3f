// VM file descriptor ioctls: memory slots, in-kernel irqchip and PIT, x86
// set-up addresses, GSI routing, irqfd, ioeventfd, MSI and IRQ lines, vCPUs.
#include "kvm.h"

#include "uapi.h"
#include <sys/ioctl.h>

namespace xdpvm {
namespace {

// A u64 given as a number (below 2^53) or a bigint.
uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() > i && info[i].IsBigInt()) {
    bool lossless = false;
    uint64_t v = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(info.Env(), std::string(name) + " does not fit in 64 bits");
    return v;
  }
  int64_t v = ArgInt64(info, i, name);
  if (v < 0) throw Napi::RangeError::New(info.Env(), std::string(name) + " must not be negative");
  return static_cast<uint64_t>(v);
}

void Check(const Napi::CallbackInfo& info, int r, const char* call, int fd) {
  if (r < 0) throw ErrnoError(info.Env(), What(call, fd).c_str(), errno);
}

// setUserMemoryRegion(vm, slot, flags, guestPhysAddr, bytes | null): the
// bytes' address and length become the slot; null deletes the slot.
Napi::Value SetUserMemoryRegion(const Napi::CallbackInfo& info) {
  int vm = ArgInt(info, 0, "vm");
  kvm_userspace_memory_region r{};
  r.slot = static_cast<uint32_t>(ArgInt(info, 1, "slot"));
  r.flags = static_cast<uint32_t>(ArgInt(info, 2, "flags"));
  r.guest_phys_addr = ArgU64(info, 3, "guestPhysAddr");
  if (info.Length() > 4 && !info[4].IsNull() && !info[4].IsUndefined()) {
    Bytes b = ArgBytes(info, 4, "memory");
    r.userspace_addr = reinterpret_cast<uintptr_t>(b.data);
    r.memory_size = b.length;
  }
  Check(info, ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r), "KVM_SET_USER_MEMORY_REGION", vm);
  return info.Env().Undefined();
}

Napi::Value CreateIrqchip(const Napi::CallbackInfo& info) {
  int vm = ArgInt(info, 0, "vm");
  Check(info, ioctl(vm, KVM_CREATE_IRQCHIP, 0), "KVM_CREATE_IRQCHIP", vm);
  return info.Env().Undefined();
}

// createPit2(vm, flags): flags 0 or KVM_PIT_SPEAKER_DUMMY.
Napi::Value CreatePit2(const Napi::CallbackInfo& info) {
  int vm = ArgInt(info, 0, "vm");
  kvm_pit_config c{};
  c.flags = static_cast<uint32_t>(info.Length() > 1 ? ArgInt(info, 1, "flags") : 0);
  Check(info, ioctl(vm, KVM_CREATE_PIT2, &c), "KVM_CREATE_PIT2", vm);
  return info.Env().Undefined();
}

// setTssAddr(vm, addr): three pages below 4 GiB that VMX needs (a no-op elsewhere).
Napi::Value SetTssAddr(const Napi::CallbackInfo& info) {
  int vm = ArgInt(info, 0, "vm");
  unsigned long addr = ArgU64(info, 1, "addr");
  Check(info, ioctl(vm, KVM_SET_TSS_ADDR, addr), "KVM_SET_TSS_ADDR", vm);
  return info.Env().Undefined();
}

// setIdentityMapAddr(vm, addr): unlike the TSS, passed by pointer.
Napi::Value SetIdentityMapAddr(const Napi::CallbackInfo& info) {
  int vm = ArgInt(info, 0, "vm");
  uint64_t addr = ArgU64(info, 1, "addr");
  Check(info, ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &addr), "KVM_SET_IDENTITY_MAP_ADDR", vm);
  return info.Env().Undefined();
}

// setGsiRouting(vm, kvm_irq_routing bytes): replaces the whole table.
Napi::Value SetGsiRouting(const Napi::CallbackInfo& info) {
  int vm = ArgInt(info, 0, "vm");
  Bytes b = ArgFlex(info, 1, sizeof(kvm_irq_routing), sizeof(kvm_irq_routing_entry), "routing");
  Check(info, ioctl(vm, KVM_SET_GSI_ROUTING, b.data), "KVM_SET_GSI_ROUTING", vm);
  return info.Env().Undefined();
}

// irqfd(vm, eventfd, gsi, flags, resamplefd): flags carry DEASSIGN / RESAMPLE.
Napi::Value Irqfd(const Napi::CallbackInfo& info) {
  int vm = ArgInt(info, 0, "vm");
  kvm_irqfd f{};
  f.fd = static_cast<uint32_t>(ArgInt(info, 1, "eventfd"));
  f.gsi = static_cast<uint32_t>(ArgInt(info, 2, "gsi"));
  f.flags = static_cast<uint32_t>(info.Length() > 3 ? ArgInt(info, 3, "flags") : 0);
  f.resamplefd = static_cast<uint32_t>(info.Length() > 4 ? ArgInt(info, 4, "resamplefd") : 0);
  Check(info, ioctl(vm, KVM_IRQFD, &f), "KVM_IRQFD", vm);
  return info.Env().Undefined();
}

// ioeventfd(vm, addr, len, eventfd, flags, datamatch): flags carry PIO,
// DATAMATCH and DEASSIGN; len 0 (MMIO only) matches any access size.
Napi::Value Ioeventfd(const Napi::CallbackInfo& info) {
  int vm = ArgInt(info, 0, "vm");
  kvm_ioeventfd e{};
  e.addr = ArgU64(info, 1, "addr");
  e.len = static_cast<uint32_t>(ArgInt(info, 2, "len"));
  e.fd = ArgInt(info, 3, "eventfd");
  e.flags = static_cast<uint32_t>(ArgInt(info, 4, "flags"));
  e.datamatch = info.Length() > 5 && !info[5].IsUndefined() ? ArgU64(info, 5, "datamatch") : 0;
  Check(info, ioctl(vm, KVM_IOEVENTFD, &e), "KVM_IOEVENTFD", vm);
  return info.Env().Undefined();
}

// signalMsi(vm, addressLo, addressHi, data) -> >0 delivered, 0 blocked by the guest.
Napi::Value SignalMsi(const Napi::CallbackInfo& info) {
  int vm = ArgInt(info, 0, "vm");
  kvm_msi m{};
  m.address_lo = static_cast<uint32_t>(ArgInt64(info, 1, "addressLo"));
  m.address_hi = static_cast<uint32_t>(ArgInt64(info, 2, "addressHi"));
  m.data = static_cast<uint32_t>(ArgInt64(info, 3, "data"));
  int r = ioctl(vm, KVM_SIGNAL_MSI, &m);
  Check(info, r, "KVM_SIGNAL_MSI", vm);
  return Napi::Number::New(info.Env(), r);
}

Napi::Value IrqLine(const Napi::CallbackInfo& info) {
  int vm = ArgInt(info, 0, "vm");
  kvm_irq_level l{};
  l.irq = static_cast<uint32_t>(ArgInt(info, 1, "irq"));
  l.level = static_cast<uint32_t>(ArgInt(info, 2, "level"));
  Check(info, ioctl(vm, KVM_IRQ_LINE, &l), "KVM_IRQ_LINE", vm);
  return info.Env().Undefined();
}

// registerCoalescedIo(vm, addr, size, pio, unregister?): writes inside [addr, addr + size) no longer exit; KVM
// logs them in the ring page of the kvm_run mapping, to be applied before the next exit is handled. With
// unregister, the zone exits again.
Napi::Value RegisterCoalescedIo(const Napi::CallbackInfo& info) {
  int vm = ArgInt(info, 0, "vm");
  kvm_coalesced_mmio_zone z{};
  z.addr = ArgU64(info, 1, "addr");
  z.size = static_cast<uint32_t>(ArgInt(info, 2, "size"));
  z.pio = info.Length() > 3 && info[3].ToBoolean().Value() ? 1 : 0;
  bool remove = info.Length() > 4 && info[4].ToBoolean().Value();
  if (remove) Check(info, ioctl(vm, KVM_UNREGISTER_COALESCED_MMIO, &z), "KVM_UNREGISTER_COALESCED_MMIO", vm);
  else Check(info, ioctl(vm, KVM_REGISTER_COALESCED_MMIO, &z), "KVM_REGISTER_COALESCED_MMIO", vm);
  return info.Env().Undefined();
}

Napi::Value CreateVcpu(const Napi::CallbackInfo& info) {
  int vm = ArgInt(info, 0, "vm");
  int id = ArgInt(info, 1, "id");
  int r = ioctl(vm, KVM_CREATE_VCPU, id);
  Check(info, r, "KVM_CREATE_VCPU", vm);
  return Napi::Number::New(info.Env(), r);
}

}  // namespace

void InitKvmVm(Napi::Env env, Napi::Object exports) {
  exports.Set("setUserMemoryRegion", Napi::Function::New(env, SetUserMemoryRegion));
  exports.Set("createIrqchip", Napi::Function::New(env, CreateIrqchip));
  exports.Set("createPit2", Napi::Function::New(env, CreatePit2));
  exports.Set("setTssAddr", Napi::Function::New(env, SetTssAddr));
  exports.Set("setIdentityMapAddr", Napi::Function::New(env, SetIdentityMapAddr));
  exports.Set("setGsiRouting", Napi::Function::New(env, SetGsiRouting));
  exports.Set("irqfd", Napi::Function::New(env, Irqfd));
  exports.Set("ioeventfd", Napi::Function::New(env, Ioeventfd));
  exports.Set("signalMsi", Napi::Function::New(env, SignalMsi));
  exports.Set("irqLine", Napi::Function::New(env, IrqLine));
  exports.Set("createVcpu", Napi::Function::New(env, CreateVcpu));
  exports.Set("registerCoalescedIo", Napi::Function::New(env, RegisterCoalescedIo));
}

}  // namespace xdpvm

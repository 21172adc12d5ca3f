// kvm addon entry point: KVM ioctls, the kvm_run mapping and the vCPU kick
// (see kvm.h). Mappings, fds, eventfd and epoll come from the sys addon.
#include <napi.h>
#include "kvm.h"

namespace xdpvm {
Napi::Object InitKvmAddon(Napi::Env env, Napi::Object exports) {
  InitKvmSystem(env, exports);
  InitKvmVm(env, exports);
  InitKvmVcpu(env, exports);
  InitKick(env, exports);
  InitKvmLayout(env, exports);
  return exports;
}
}  // namespace xdpvm

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return xdpvm::InitKvmAddon(env, exports); }
NODE_API_MODULE(kvm, Init)

// kvm addon entry point. Mapping helpers (unmap, addressOf, alias) come from
// native/common so the KVM side needs nothing from the xsk addon.
#include <napi.h>
#include "../common/mapping.h"
#include "kvm.h"

namespace xdpvm {
Napi::Object InitKvmAddon(Napi::Env env, Napi::Object exports) {
  InitMapping(env, exports);
  InitKvmSystem(env, exports);
  InitKvmVm(env, exports);
  InitKvmVcpu(env, exports);
  InitKvmMemory(env, exports);
  InitEventfd(env, exports);
  InitAffinity(env, exports);
  InitEpoll(env, exports);
  InitKick(env, exports);
  InitKvmLayout(env, exports);
  return exports;
}
}  // namespace xdpvm

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return xdpvm::InitKvmAddon(env, exports); }
NODE_API_MODULE(kvm, Init)

// xsk addon: AF_XDP sockets, UMEM registration and ring mappings, BPF
// maps/programs/links, interface index and XDP query over rtnetlink.
// Mappings, fds and copies come from the sys addon; the raw C baseline loop
// is its own addon (native/raw_loop).
#include <napi.h>
#include "xsk.h"

namespace xdpvm {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitXsk(env, exports);
  InitBpf(env, exports);
  InitNetlink(env, exports);
  return exports;
}
}  // namespace xdpvm

static Napi::Object InitXskAddon(Napi::Env env, Napi::Object exports) { return xdpvm::Init(env, exports); }
NODE_API_MODULE(xsk, InitXskAddon)

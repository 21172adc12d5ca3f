// xsk addon: AF_XDP sockets, UMEM and ring mappings, BPF maps/programs/links,
// XDP query, host helpers and the raw C baseline loop.
#include <napi.h>
#include "../common/copy_batch.h"
#include "../common/mapping.h"
#include "xsk.h"

namespace xdpvm {
void InitUnixSocket(Napi::Env env, Napi::Object exports);  // unix_socket.cc

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitMapping(env, exports);
  InitCopyBatch(env, exports);
  InitXsk(env, exports);
  InitBpf(env, exports);
  InitNetlink(env, exports);
  InitHost(env, exports);
  InitRawLoop(env, exports);
  InitUnixSocket(env, exports);
  return exports;
}
}  // namespace xdpvm

static Napi::Object InitXskAddon(Napi::Env env, Napi::Object exports) { return xdpvm::Init(env, exports); }
NODE_API_MODULE(xsk, InitXskAddon)
